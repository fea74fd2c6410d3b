// Where a waiting run stands: "3rd in the cpu queue — queue paused by an administrator".

import type { Job } from "../api/types";

/** 1st, 2nd, 3rd, 4th, 11th, 12th, 13th, 21st, 22nd, 101st. */
export function ordinal(n: number): string {
  const tens = n % 100;
  const ones = n % 10;
  const suffix = tens >= 11 && tens <= 13 ? "th" : ones === 1 ? "st" : ones === 2 ? "nd" : ones === 3 ? "rd" : "th";
  return `${n}${suffix}`;
}

/** Its place and why it waits, in words; "" for a run that is not waiting or says nothing. */
export function waitingText(job: Job): string {
  if (job.status !== "queued") return "";
  const place = job.position ? `${ordinal(job.position)} in the ${job.queue} queue` : "";
  const reason = (job.waiting_reason ?? "").trim();
  return [place, reason].filter(Boolean).join(" — ");
}
