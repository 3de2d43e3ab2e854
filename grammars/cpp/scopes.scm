; Block-like scopes of C++.  Type specifiers count only with a body.

[
  (function_definition)
  (lambda_expression)
] @scope.function

[
  (class_specifier body: (_))
  (struct_specifier body: (_))
  (union_specifier body: (_))
  (enum_specifier body: (_))
  (namespace_definition)
] @scope.class

[
  (if_statement)
  (for_statement)
  (for_range_loop)
  (while_statement)
  (do_statement)
  (switch_statement)
  (try_statement)
] @scope.block
