// The model cache's download worker on a disk that fills up: test/e2e/model-cache.test.ts serves this as
// /download-worker.js, after a first line setting FAIL_WRITES_AFTER, for the quota test.
import { quotaRunsOutAfter } from "./quota-runs-out.js";
import "../../src/browser/download-worker.js";

quotaRunsOutAfter((globalThis as { FAIL_WRITES_AFTER?: number }).FAIL_WRITES_AFTER ?? Number.POSITIVE_INFINITY);
