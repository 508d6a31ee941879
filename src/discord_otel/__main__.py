from discord_otel.cli import main

raise SystemExit(main())
