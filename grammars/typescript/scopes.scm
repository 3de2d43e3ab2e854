; Block-like scopes of TypeScript (the JavaScript ones plus declarations
; that only TypeScript has).

[
  (function_declaration)
  (function_expression)
  (generator_function_declaration)
  (generator_function)
  (method_definition)
] @scope.function

(arrow_function body: (statement_block)) @scope.function

[
  (class_declaration)
  (abstract_class_declaration)
  (class)
  (interface_declaration)
  (enum_declaration)
  (internal_module)
  (module)
] @scope.class

[
  (if_statement)
  (for_statement)
  (for_in_statement)
  (while_statement)
  (do_statement)
  (try_statement)
  (switch_statement)
  (class_static_block)
] @scope.block
