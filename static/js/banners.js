// The messages Django shows above a page ("Successfully signed in as …") close with their ×;
// the list goes with its last message, so the page below moves up into the room it took.
document.querySelectorAll("ul.messages [data-dismiss]").forEach((button) => {
  button.addEventListener("click", () => {
    const item = button.closest("li");
    const list = item.parentElement;
    item.remove();
    if (!list.children.length) list.remove();
  });
});
