; Block-like scopes of JavaScript.  Arrow functions count only with a block
; body; an expression body is not a block.

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
  (class)
] @scope.class

[
  (if_statement)
  (for_statement)
  (for_in_statement)
  (while_statement)
  (do_statement)
  (try_statement)
  (switch_statement)
  (with_statement)
  (class_static_block)
] @scope.block
