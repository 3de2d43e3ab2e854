; Comments of Rust source.  The grammar marks doc comments ("///", "//!",
; "/**", "/*!") with a `doc` field.

(line_comment doc: (doc_comment)) @comment.doc
(block_comment doc: (doc_comment)) @comment.doc

(line_comment !doc) @comment.line
(block_comment !doc) @comment.block
