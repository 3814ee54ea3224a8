from .standalone import main

raise SystemExit(main())
