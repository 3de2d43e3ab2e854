; Block-like scopes of Rust.

[
  (function_item)
  (closure_expression body: (block))
] @scope.function

[
  (struct_item)
  (enum_item)
  (union_item)
  (trait_item)
  (impl_item)
  (mod_item body: (declaration_list))
] @scope.class

[
  (if_expression)
  (for_expression)
  (while_expression)
  (loop_expression)
  (match_expression)
  (unsafe_block)
  (async_block)
] @scope.block
