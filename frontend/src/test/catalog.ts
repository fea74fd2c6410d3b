// The real block catalog for unit tests: catalog.json is the body of GET /api/blocks,
// written by `make` (manage.py catalog_fixture) beside the API's types.
import type { BlockCatalog } from "../api/types";
import { makeCatalog } from "../graph/ops";
import served from "./catalog.json";

export const SERVED = served as BlockCatalog;
export const BLOCKS = SERVED.blocks;
export const CATALOG = makeCatalog(SERVED);
