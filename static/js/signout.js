// Signing out forgets chat history that earlier versions of the chat page kept in this browser
// (history now lives on the server), so the next person at a shared computer does not find
// it. Runs before the sign-out form posts.
document.querySelectorAll("form[data-sign-out]").forEach((form) => {
  form.addEventListener("submit", () => {
    try {
      Object.keys(localStorage)
        .filter((key) => key.startsWith("gateway.chat.conversations."))
        .forEach((key) => localStorage.removeItem(key));
    } catch {
      /* storage unavailable: nothing was kept */
    }
  });
});
