; Comments of C source.  Doxygen doc comments ("/**", "/*!", "///", "//!")
; are told apart by their opening characters; "////" rulers and "/**/" are not docs.

((comment) @comment.doc
  (#match? @comment.doc "^(/\\*[*!][^/]|//[/!]([^/]|$))"))

((comment) @comment.block
  (#match? @comment.block "^/\\*")
  (#not-match? @comment.block "^/\\*[*!][^/]"))

((comment) @comment.line
  (#match? @comment.line "^//")
  (#not-match? @comment.line "^//[/!]([^/]|$)"))
