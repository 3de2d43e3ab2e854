; Comments of Python source.
; A docstring is the string statement opening a module, class or function
; body; comments may precede it (e.g. a shebang or licence header).

(comment) @comment.line

(module
  . (comment)*
  . (expression_statement . (string) @comment.doc .))

(function_definition
  body: (block
    . (comment)*
    . (expression_statement . (string) @comment.doc .)))

(class_definition
  body: (block
    . (comment)*
    . (expression_statement . (string) @comment.doc .)))
