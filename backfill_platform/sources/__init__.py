"""One folder per API: settings, client, tables, partitions, assets, checks, and its Definitions."""
