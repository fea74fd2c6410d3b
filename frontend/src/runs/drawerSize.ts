// The run drawer's height: what the user dragged it to, remembered in this browser, kept
// between a height that shows a chart and one that leaves the canvas usable.

export const HEIGHT_KEY = "shipyard.runs.height";
/** the tabs, a status line and a small chart */
export const MIN_HEIGHT = 160;
/** room left above the drawer: the top bar, a usable strip of canvas, the status line */
export const ROOM_ABOVE = 220;
/** a keyboard step, and a big one (Shift or Page keys) */
export const KEY_STEP = 24;
export const BIG_STEP = 96;

/** The tallest the drawer may be in a window `windowHeight` px high. */
export function maxHeight(windowHeight: number): number {
  return Math.max(MIN_HEIGHT, windowHeight - ROOM_ABOVE);
}

/** `height` kept between the minimum and the window's maximum. */
export function clampHeight(height: number, windowHeight: number): number {
  return Math.round(Math.min(maxHeight(windowHeight), Math.max(MIN_HEIGHT, height)));
}

/** The height of a drawer never resized: about a third of the window. */
export function defaultHeight(windowHeight: number): number {
  return clampHeight(Math.min(320, windowHeight * 0.32), windowHeight);
}

/** The remembered height, or the default when none (or nonsense) is stored. */
export function storedHeight(stored: string | null, windowHeight: number): number {
  const n = Number(stored);
  if (stored === null || stored === "" || !Number.isFinite(n) || n <= 0) return defaultHeight(windowHeight);
  return clampHeight(n, windowHeight);
}

/** The height a key on the resize handle asks for; null for other keys. */
export function heightForKey(key: string, shift: boolean, height: number, windowHeight: number): number | null {
  const step = shift ? BIG_STEP : KEY_STEP;
  switch (key) {
    case "ArrowUp": return clampHeight(height + step, windowHeight);
    case "ArrowDown": return clampHeight(height - step, windowHeight);
    case "PageUp": return clampHeight(height + BIG_STEP, windowHeight);
    case "PageDown": return clampHeight(height - BIG_STEP, windowHeight);
    case "Home": return MIN_HEIGHT;
    case "End": return maxHeight(windowHeight);
    default: return null;
  }
}
