// "Keyboard shortcuts": everything has a keyboard path.
import { Fragment, type ReactNode } from "react";

import { Modal } from "../ui/Modal";
import { closeDialog } from "./common";
import { isMac } from "./format";

interface Shortcut {
  keys: string[][];
  what: ReactNode;
}

/** The shortcuts, with "Cmd" on macOS and "Ctrl" elsewhere. */
export function shortcutGroups(mac: boolean): { title: string; items: Shortcut[] }[] {
  const mod = mac ? "Cmd" : "Ctrl";
  return [
    {
      title: "Editing",
      items: [
        { keys: [["/"]], what: "Search blocks" },
        { keys: [["Delete"], ["Backspace"]], what: "Delete the selection" },
        { keys: [[mod, "Z"]], what: "Undo" },
        { keys: mac ? [[mod, "Shift", "Z"]] : [[mod, "Shift", "Z"], ["Ctrl", "Y"]], what: "Redo" },
        { keys: [[mod, "C"], [mod, "V"]], what: "Copy, paste (also between tabs)" },
        { keys: [[mod, "D"]], what: "Duplicate the selection" },
        { keys: [[mod, "A"]], what: "Select all" },
        { keys: [[mod, "S"]], what: "Save" },
      ],
    },
    {
      title: "Repeats",
      items: [
        { keys: [[mod, "G"]], what: "Make a Repeat from the selection" },
        { keys: [["Enter"]], what: "Open the selected Repeat" },
        { keys: [["Escape"]], what: "Leave the Repeat; close a dialog" },
      ],
    },
    {
      title: "View",
      items: [
        { keys: [["L"]], what: "Auto-layout" },
        { keys: [["F"]], what: "Fit the view" },
        { keys: [["Double-click"]], what: "Quick add a block on the canvas" },
        { keys: [["?"]], what: "This help" },
      ],
    },
    {
      title: "SQL console",
      items: [
        { keys: [["Q"]], what: "Open or close the SQL console" },
        { keys: [[mod, "Enter"]], what: "Run the script" },
        { keys: [["Tab"], ["Enter"]], what: "Accept the table or column name offered" },
        { keys: [[mod, "↑"], [mod, "↓"]], what: "Earlier and later scripts" },
      ],
    },
  ];
}

export function ShortcutsDialog() {
  const groups = shortcutGroups(isMac());
  return (
    <Modal title="Keyboard shortcuts" onClose={closeDialog}>
      <table className="shortcuts">
        {groups.map((group) => (
          <tbody key={group.title}>
            <tr>
              <th colSpan={2} scope="colgroup" className="shortcuts-group">{group.title}</th>
            </tr>
            {group.items.map((item, i) => (
              <tr key={i}>
                <td className="shortcuts-keys">
                  {item.keys.map((combo, j) => (
                    <Fragment key={j}>
                      {j > 0 ? <span className="shortcuts-or"> or </span> : null}
                      {combo.map((key, k) => (
                        <Fragment key={k}>
                          {k > 0 ? "+" : null}
                          {key === "Double-click" ? <span>double-click</span> : <kbd>{key}</kbd>}
                        </Fragment>
                      ))}
                    </Fragment>
                  ))}
                </td>
                <td>{item.what}</td>
              </tr>
            ))}
          </tbody>
        ))}
      </table>
    </Modal>
  );
}
