import { describe, expect, it } from "vitest";

import { clampHeight, defaultHeight, heightForKey, maxHeight, MIN_HEIGHT, storedHeight } from "./drawerSize";

describe("the run drawer's height", () => {
  it("opens at about a third of the window, not 40%", () => {
    expect(defaultHeight(900)).toBe(288);
    expect(defaultHeight(720)).toBe(230);
    expect(defaultHeight(1400)).toBe(320);
  });

  it("stays between a minimum and what leaves the canvas usable", () => {
    expect(clampHeight(10, 900)).toBe(MIN_HEIGHT);
    expect(clampHeight(5000, 900)).toBe(maxHeight(900));
    expect(maxHeight(900)).toBe(680);
    expect(clampHeight(300.4, 900)).toBe(300);
    // a tiny window still gets the minimum
    expect(clampHeight(300, 200)).toBe(MIN_HEIGHT);
  });

  it("comes back as remembered, clamped to the window it opens in", () => {
    expect(storedHeight("420", 900)).toBe(420);
    expect(storedHeight("620", 720)).toBe(maxHeight(720));
    expect(storedHeight(null, 900)).toBe(defaultHeight(900));
    expect(storedHeight("banana", 900)).toBe(defaultHeight(900));
    expect(storedHeight("-3", 900)).toBe(defaultHeight(900));
  });

  it("moves with the keyboard", () => {
    expect(heightForKey("ArrowUp", false, 300, 900)).toBe(324);
    expect(heightForKey("ArrowDown", false, 300, 900)).toBe(276);
    expect(heightForKey("ArrowUp", true, 300, 900)).toBe(396);
    expect(heightForKey("ArrowDown", false, MIN_HEIGHT, 900)).toBe(MIN_HEIGHT);
    expect(heightForKey("Home", false, 300, 900)).toBe(MIN_HEIGHT);
    expect(heightForKey("End", false, 300, 900)).toBe(maxHeight(900));
    expect(heightForKey("a", false, 300, 900)).toBeNull();
  });
});
