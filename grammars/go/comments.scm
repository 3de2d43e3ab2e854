; Comments of Go source.  Go doc comments are ordinary "//" comments placed
; before a declaration; the grammar does not mark them, so they are lines.

((comment) @comment.block
  (#match? @comment.block "^/\\*"))

((comment) @comment.line
  (#match? @comment.line "^//"))
