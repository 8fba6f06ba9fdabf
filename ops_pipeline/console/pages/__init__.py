"""The console's pages, one module per area; `routes.install` mounts each module's `router`."""
