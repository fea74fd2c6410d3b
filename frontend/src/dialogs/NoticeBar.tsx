// The toast at the bottom centre: store.notice. Info notices go after 4 s (not while the
// pointer is on them); warnings and errors stay until closed.
import { useEffect, useState } from "react";

import { useEditor } from "../store/editor";

export const INFO_NOTICE_MS = 4000;

export function NoticeBar() {
  const notice = useEditor((s) => s.notice);
  const [hovered, setHovered] = useState(false);

  useEffect(() => {
    if (!notice || notice.kind !== "info" || hovered) return;
    const timer = setTimeout(() => {
      const store = useEditor.getState();
      if (store.notice === notice) store.notify(null);
    }, INFO_NOTICE_MS);
    return () => clearTimeout(timer);
  }, [notice, hovered]);

  useEffect(() => setHovered(false), [notice]);

  return (
    <div className="notice-region" aria-live="polite">
      {notice ? (
        <div
          className={`notice notice-${notice.kind}`}
          data-testid="notice"
          data-kind={notice.kind}
          role={notice.kind === "info" ? "status" : "alert"}
          onMouseEnter={() => setHovered(true)}
          onMouseLeave={() => setHovered(false)}
        >
          <span className="notice-mark" aria-hidden="true" />
          <span className="notice-text">{notice.text}</span>
          <button type="button" className="notice-close" aria-label="Dismiss" title="Dismiss"
            onClick={() => useEditor.getState().notify(null)}>
            ×
          </button>
        </div>
      ) : null}
    </div>
  );
}
