/** The server's only stylesheet, served at /assets/style.css (no external assets, no inline styles). */
export const STYLESHEET = `:root {
  color-scheme: light dark;
  --bg: #f7f7f5;
  --panel: #ffffff;
  --text: #1d1d1f;
  --muted: #5a5a60;
  --line: #d8d8dc;
  --accent: #2451b7;
  --accent-text: #ffffff;
  --danger: #a3222b;
  --error-bg: #fdecec;
  --focus: #f0b400;
  font-family: system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif;
  line-height: 1.5;
}
@media (prefers-color-scheme: dark) {
  :root {
    --bg: #16171a;
    --panel: #1f2125;
    --text: #ececef;
    --muted: #a6a6ad;
    --line: #3a3c42;
    --accent: #7ea2ff;
    --accent-text: #0d1224;
    --danger: #ff8a8f;
    --error-bg: #3b1c1f;
  }
}
* { box-sizing: border-box; }
body { margin: 0; background: var(--bg); color: var(--text); }
a { color: var(--accent); }
:focus-visible { outline: 3px solid var(--focus); outline-offset: 2px; }
.skip { position: absolute; left: -999px; top: 0; }
.skip:focus { left: 1rem; top: 1rem; background: var(--panel); padding: 0.5rem 1rem; z-index: 1; }
header {
  display: flex; flex-wrap: wrap; align-items: center; justify-content: space-between; gap: 1rem;
  padding: 0.75rem 1.5rem; background: var(--panel); border-bottom: 1px solid var(--line);
}
.brand { font-weight: 700; text-decoration: none; color: var(--text); letter-spacing: 0.02em; }
nav { display: flex; flex-wrap: wrap; align-items: center; gap: 1rem; }
main {
  max-width: 56rem; margin: 2rem auto; padding: 1.5rem 2rem; background: var(--panel);
  border: 1px solid var(--line); border-radius: 10px;
}
h1 { margin-top: 0; font-size: 1.6rem; }
.lead { font-size: 1.15rem; }
.stack { display: grid; gap: 0.4rem; max-width: 22rem; }
form.inline { display: inline; }
[hidden] { display: none !important; }
label { font-weight: 600; margin-top: 0.6rem; }
label.check { font-weight: 400; display: flex; gap: 0.5rem; align-items: center; }
h2 { font-size: 1.15rem; margin-top: 2rem; }
input[type="text"], input[type="password"] {
  font: inherit; padding: 0.55rem 0.7rem; border: 1px solid var(--line); border-radius: 6px;
  background: var(--bg); color: var(--text);
}
button {
  font: inherit; cursor: pointer; padding: 0.5rem 1rem; border-radius: 6px;
  border: 1px solid var(--accent); background: var(--accent); color: var(--accent-text);
}
.stack button { margin-top: 1rem; justify-self: start; }
button.link { background: none; border: none; color: var(--accent); padding: 0; text-decoration: underline; }
button.danger { background: none; color: var(--danger); border-color: var(--danger); margin-top: 1rem; }
td button { background: none; color: var(--accent); padding: 0.2rem 0.7rem; white-space: nowrap; }
.error {
  padding: 0.6rem 0.9rem; border-left: 4px solid var(--danger); background: var(--error-bg);
  border-radius: 4px; max-width: 22rem;
}
.hint { color: var(--muted); font-size: 0.9rem; margin: 0; }
dl { display: grid; grid-template-columns: max-content 1fr; gap: 0.4rem 1.5rem; }
dt { color: var(--muted); }
dd { margin: 0; }
.table-wrap { overflow-x: auto; }
table { border-collapse: collapse; width: 100%; font-size: 0.95rem; }
th, td { text-align: left; padding: 0.55rem 0.6rem; border-bottom: 1px solid var(--line); vertical-align: top; }
td:first-child { word-break: break-word; max-width: 22rem; }
tr.current { background: var(--bg); }
.badge {
  display: inline-block; margin-left: 0.4rem; padding: 0 0.45rem; border-radius: 999px;
  font-size: 0.8rem; background: var(--accent); color: var(--accent-text);
}
.visually-hidden {
  position: absolute; width: 1px; height: 1px; overflow: hidden; clip-path: inset(50%); white-space: nowrap;
}
`;
