from codegen_lsp.cli import main

raise SystemExit(main())
