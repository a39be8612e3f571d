// Keyboard shortcuts: a key clicks the button or link marked data-key="KEY", or focuses the field so
// marked. Typing in a field is never taken as a shortcut; Esc leaves the field.
document.addEventListener("keydown", function (event) {
  var target = event.target;
  var typing = target && (target.tagName === "INPUT" || target.tagName === "TEXTAREA" || target.tagName === "SELECT");
  if (typing) {
    if (event.key === "Escape") { target.blur(); }
    return;
  }
  if (event.ctrlKey || event.metaKey || event.altKey || event.key.length !== 1) { return; }
  var control = document.querySelector('[data-key="' + event.key.toLowerCase() + '"]');
  if (!control) { return; }
  event.preventDefault();
  if (control.tagName === "INPUT" || control.tagName === "TEXTAREA") { control.focus(); control.select(); }
  else { control.click(); }
});
