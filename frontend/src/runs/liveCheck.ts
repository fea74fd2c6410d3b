// The run forms' live check as a hook: the body a form would start goes to POST
// /api/jobs/check a moment after it last changed (createRunCheck), and what the answer says
// of the graph's nodes (refused, approximate) goes to the runs store for the canvas to show.
import { useEffect, useMemo, useState } from "react";

import { api } from "../api/client";
import { checkMarks, createRunCheck, NO_MARKS, type CheckBody, type CheckState, type RunChecker } from "./check";
import { runsStore } from "./store";

/** The live check of `body` (null: nothing to check), re-requested on every render (the
 * checker skips a body it has already checked). */
export function useLiveCheck(body: CheckBody | null): { check: CheckState; checker: RunChecker } {
  const [check, setCheck] = useState<CheckState>({ status: "idle" });
  const checker = useMemo(() => createRunCheck({ check: (b, signal) => api.checkJob(b, signal), onChange: setCheck }), []);
  useEffect(() => () => checker.stop(), [checker]);
  useEffect(() => {
    checker.request(body);
  });
  const marks = useMemo(() => checkMarks(check), [check]);
  useEffect(() => {
    runsStore.getState().setCheckMarks(marks);
  }, [marks]);
  // A form that goes (another kind chosen, the drawer closed) takes its marks with it.
  useEffect(() => () => runsStore.getState().setCheckMarks(NO_MARKS), []);
  return { check, checker };
}
