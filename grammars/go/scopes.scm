; Block-like scopes of Go.

[
  (function_declaration)
  (method_declaration)
  (func_literal)
] @scope.function

(type_declaration
  (type_spec type: [(struct_type) (interface_type)])) @scope.class

[
  (if_statement)
  (for_statement)
  (expression_switch_statement)
  (type_switch_statement)
  (select_statement)
] @scope.block
