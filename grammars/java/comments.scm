; Comments of Java source.  Javadoc is a block comment opening with "/**".

(line_comment) @comment.line

((block_comment) @comment.doc
  (#match? @comment.doc "^/\\*\\*[^/]"))

((block_comment) @comment.block
  (#not-match? @comment.block "^/\\*\\*[^/]"))
