; Block-like scopes of Python: a suggestion that opened one of these ends
; when the construct ends.

(function_definition) @scope.function

(class_definition) @scope.class

[
  (if_statement)
  (for_statement)
  (while_statement)
  (with_statement)
  (try_statement)
  (match_statement)
] @scope.block
