; Block-like scopes of C.  Type specifiers count only with a body; a bare
; "struct foo" reference is not a scope.

(function_definition) @scope.function

[
  (struct_specifier body: (_))
  (union_specifier body: (_))
  (enum_specifier body: (_))
] @scope.class

[
  (if_statement)
  (for_statement)
  (while_statement)
  (do_statement)
  (switch_statement)
] @scope.block
