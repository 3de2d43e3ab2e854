; Comments of JavaScript source.  The grammar has one `comment` node for all
; forms, so the kind is told apart by its opening characters.
; "/**/" is an empty block comment, not JSDoc.

((comment) @comment.doc
  (#match? @comment.doc "^/\\*\\*[^/]"))

((comment) @comment.block
  (#match? @comment.block "^/\\*")
  (#not-match? @comment.block "^/\\*\\*[^/]"))

((comment) @comment.line
  (#match? @comment.line "^//"))
