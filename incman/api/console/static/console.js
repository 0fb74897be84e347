// The event console's little script: selection, the Create Incident menu, dialogs and
// refreshing the events table in place. Every action is a plain form post without it.
(function () {
  "use strict";

  const REFRESH_MS = 15000;

  function selectedIds() {
    return Array.from(document.querySelectorAll('input[name="event_id"]:checked')).map(
      (box) => box.value
    );
  }

  function updateCount() {
    const count = document.getElementById("selection-count");
    if (count) {
      const n = selectedIds().length;
      count.textContent = n + " selected";
    }
    const all = document.getElementById("select-all");
    if (all) {
      const boxes = document.querySelectorAll('tbody input[name="event_id"]');
      const ticked = document.querySelectorAll('tbody input[name="event_id"]:checked');
      all.checked = boxes.length > 0 && ticked.length === boxes.length;
      all.indeterminate = ticked.length > 0 && ticked.length < boxes.length;
    }
  }

  document.addEventListener("change", (e) => {
    const target = e.target;
    if (target.id === "select-all") {
      document.querySelectorAll('tbody input[name="event_id"]').forEach((box) => {
        box.checked = target.checked;
      });
    }
    if (target.id === "select-all" || target.name === "event_id") {
      updateCount();
    }
  });

  // -- the Create Incident menu (a disclosure: a button that shows a list of buttons) -----
  function menuParts() {
    return [document.getElementById("create-menu-button"), document.getElementById("create-menu-list")];
  }

  function setMenu(open, focusButton) {
    const [button, list] = menuParts();
    if (!button || !list) return;
    list.hidden = !open;
    button.setAttribute("aria-expanded", String(open));
    if (open) {
      const first = list.querySelector("button");
      if (first) first.focus();
    } else if (focusButton) {
      button.focus();
    }
  }

  document.addEventListener("click", (e) => {
    const [button, list] = menuParts();
    if (button && e.target === button) {
      setMenu(list.hidden, false);
      return;
    }
    if (list && !list.hidden && !list.contains(e.target)) {
      setMenu(false, false);
    }
  });

  document.addEventListener("keydown", (e) => {
    const [, list] = menuParts();
    if (!list || list.hidden) return;
    if (e.key === "Escape") {
      setMenu(false, true);
      e.preventDefault();
    } else if (e.key === "ArrowDown" || e.key === "ArrowUp") {
      const items = Array.from(list.querySelectorAll("button"));
      const at = items.indexOf(document.activeElement);
      const next = (at + (e.key === "ArrowDown" ? 1 : items.length - 1)) % items.length;
      items[next].focus();
      e.preventDefault();
    }
  });

  // -- dialogs: Add note, and Assign New Incident Number -------------------------------
  function openAssociate(notification) {
    const dialog = document.getElementById("associate-dialog");
    if (!dialog) return;
    document.getElementById("assoc-notification").value = notification;
    document.getElementById("associate-target").textContent = notification;
    setMenu(false, false);
    dialog.showModal();
    document.getElementById("incident-number").focus();
  }

  document.addEventListener("click", (e) => {
    const opener = e.target.closest("[data-open-dialog]");
    if (opener) {
      const dialog = document.getElementById(opener.dataset.openDialog);
      if (dialog) {
        dialog.showModal();
        const field = dialog.querySelector("textarea, input:not([type=hidden])");
        if (field) field.focus();
      }
      return;
    }
    const closer = e.target.closest("[data-close-dialog]");
    if (closer) {
      closer.closest("dialog").close();
      return;
    }
    const associate = e.target.closest("[data-associate]");
    if (associate) openAssociate(associate.dataset.associate);
  });

  // Enter in a dialog's field presses that dialog's button, not the form's first one
  // (which would be Acknowledge).
  document.addEventListener("keydown", (e) => {
    if (e.key !== "Enter" || e.target.tagName !== "INPUT") return;
    const dialog = e.target.closest("dialog");
    if (!dialog) return;
    e.preventDefault();
    const button = dialog.querySelector("button[type=submit]");
    if (button) button.click();
  });

  // Right-click on a notification opens the association dialog, as in the classic console.
  document.addEventListener("contextmenu", (e) => {
    const item = e.target.closest("[data-notification]");
    if (item) {
      e.preventDefault();
      openAssociate(item.dataset.notification);
    }
  });

  // -- refreshing the table in place --------------------------------------------------
  let busy = false;

  function somethingOpen() {
    const [, list] = menuParts();
    return (list && !list.hidden) || document.querySelector("dialog[open]") !== null;
  }

  async function refresh(byHand) {
    const live = document.getElementById("events-live");
    const button = document.getElementById("refresh-button");
    if (!live || !button || busy) return;
    if (!byHand && (document.hidden || somethingOpen())) return;
    busy = true;
    const keep = new Set(selectedIds());
    const query = live.dataset.query;
    try {
      const answer = await fetch(button.dataset.rowsUrl + (query ? "?" + query : ""), {
        credentials: "same-origin",
        headers: { Accept: "text/html" },
      });
      if (answer.headers.get("X-Incman-Fragment") !== "events") {
        window.location.reload(); // signed out, or the session expired: show the sign-in page
        return;
      }
      live.innerHTML = await answer.text();
      live.querySelectorAll('input[name="event_id"]').forEach((box) => {
        box.checked = keep.has(box.value);
      });
      updateCount();
      const summary = document.getElementById("events-summary");
      if (summary) {
        const stamp = new Date().toISOString().slice(11, 19);
        summary.textContent += " · updated " + stamp + " UTC";
      }
    } catch (err) {
      const summary = document.getElementById("events-summary");
      if (summary) summary.textContent = "Could not refresh: " + err;
    } finally {
      busy = false;
    }
  }

  document.addEventListener("click", (e) => {
    if (e.target.id === "refresh-button") refresh(true);
  });

  window.setInterval(() => {
    const auto = document.getElementById("auto-refresh");
    if (auto && auto.checked) refresh(false);
  }, REFRESH_MS);

  updateCount();
})();
