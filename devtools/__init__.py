"""Tools for working on Shipyard; not part of the installed package."""
