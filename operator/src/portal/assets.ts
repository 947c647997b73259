// The portal's only static files, served from the portal itself (the CSP allows nothing else):
// the style sheet, and the script that adds the copy button (the pages work without it).

export const portalCss = `:root {
  color-scheme: light;
  --ink: #1d2430;
  --muted: #5b6575;
  --line: #d9dee7;
  --accent: #1f5fbf;
  --accent-ink: #ffffff;
  --warn-bg: #fff6e0;
  --warn-line: #e8c66a;
  --page: #f3f5f9;
  font-family: system-ui, -apple-system, "Segoe UI", Roboto, "DejaVu Sans", sans-serif;
  line-height: 1.5;
  color: var(--ink);
  background: var(--page);
}
body { margin: 0; padding: 24px 16px 40px; }
main {
  max-width: 640px;
  margin: 0 auto;
  background: #fff;
  border: 1px solid var(--line);
  border-radius: 12px;
  padding: 24px 28px 28px;
  box-shadow: 0 1px 3px rgba(20, 30, 50, 0.06);
}
footer { max-width: 640px; margin: 16px auto 0; color: var(--muted); font-size: 0.85rem; text-align: center; }
.brand { margin: 0 0 12px; font-weight: 700; letter-spacing: 0.02em; color: var(--accent); }
h1 { font-size: 1.6rem; line-height: 1.25; margin: 0 0 12px; }
h2 { font-size: 1.15rem; margin: 28px 0 10px; }
p { margin: 0 0 12px; }
.muted { color: var(--muted); font-size: 0.92rem; }
.device { display: flex; align-items: center; gap: 14px; margin: 18px 0; padding: 14px 16px; border: 1px solid var(--line); border-radius: 10px; }
.device .icon { width: 44px; height: 44px; flex: none; color: var(--accent); }
.device-name { margin: 0; font-weight: 600; font-size: 1.1rem; }
.device-address { margin: 0; color: var(--muted); }
dl.facts { display: grid; grid-template-columns: max-content 1fr; gap: 6px 16px; margin: 0 0 18px; }
dl.facts dt { color: var(--muted); }
dl.facts dd { margin: 0; overflow-wrap: anywhere; }
form { margin: 20px 0 4px; }
button, a.button {
  font: inherit; font-weight: 600; cursor: pointer; border-radius: 8px; padding: 10px 18px;
  border: 1px solid var(--accent); display: inline-block; text-decoration: none;
}
button.primary { background: var(--accent); color: var(--accent-ink); font-size: 1.05rem; padding: 12px 22px; }
a.button, button.copy { background: #fff; color: var(--accent); }
button:focus-visible, a.button:focus-visible { outline: 3px solid #9cc0f5; outline-offset: 2px; }
.warning { background: var(--warn-bg); border: 1px solid var(--warn-line); border-radius: 8px; padding: 10px 14px; }
.password-row { display: flex; flex-wrap: wrap; align-items: center; gap: 10px 12px; margin: 16px 0 8px; }
.password-label { width: 100%; margin: 0; color: var(--muted); }
.password {
  font-family: ui-monospace, "DejaVu Sans Mono", Menlo, Consolas, monospace; font-size: 1.35rem; letter-spacing: 0.06em;
  padding: 8px 12px; border: 1px dashed var(--line); border-radius: 8px; background: #fafbfd; user-select: all; overflow-wrap: anywhere;
}
table.settings { border-collapse: collapse; width: 100%; font-size: 0.95rem; }
table.settings th, table.settings td { text-align: left; padding: 7px 10px 7px 0; border-bottom: 1px solid var(--line); vertical-align: top; }
table.settings thead th { color: var(--muted); font-weight: 400; }
table.settings tbody th { font-weight: 600; padding-right: 16px; }
table.settings td { overflow-wrap: anywhere; }
@media (max-width: 520px) {
  table.settings thead { display: none; }
  table.settings tr { display: block; padding: 6px 0; border-bottom: 1px solid var(--line); }
  table.settings th, table.settings td { display: inline; border: 0; padding: 0 10px 0 0; }
  table.settings tbody th { display: block; }
}
.qr-row { display: flex; gap: 18px; align-items: center; flex-wrap: wrap; }
.qr-row p { flex: 1 1 220px; margin: 0; }
svg.qr { width: 176px; height: 176px; flex: none; background: #fff; border: 1px solid var(--line); border-radius: 6px; }
.done { margin-top: 24px; color: var(--muted); }
.status h1 { margin-top: 4px; }
`;

export const portalJs = `// devicepass portal: a copy button for the password (the page works without this script).
"use strict";
document.querySelectorAll("button[data-copy]").forEach(function (button) {
  var target = document.getElementById(button.getAttribute("data-copy"));
  if (!target || !navigator.clipboard) return;
  var label = button.textContent;
  button.hidden = false;
  button.addEventListener("click", function () {
    navigator.clipboard.writeText(target.textContent).then(function () {
      button.textContent = button.getAttribute("data-copied");
      setTimeout(function () { button.textContent = label; }, 2000);
    });
  });
});
`;
