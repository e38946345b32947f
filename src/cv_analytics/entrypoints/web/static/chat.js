// The chat page: asks /api/search and shows the answer. Every text from the
// server (the question echoed, the answer, the skills, the evidence) goes in
// with textContent, never as HTML.
"use strict";

(function () {
  const SESSION_KEY = "cv-analytics-session";
  const form = document.getElementById("ask");
  const input = document.getElementById("question");
  const log = document.getElementById("log");
  const button = form.querySelector("button[type=submit]");

  function sessionId() {
    try {
      let id = window.sessionStorage.getItem(SESSION_KEY);
      if (!id) {
        id = window.crypto.randomUUID();
        window.sessionStorage.setItem(SESSION_KEY, id);
      }
      return id;
    } catch (_) {
      return null; // storage disabled: ask without a session
    }
  }

  function element(tag, className, text) {
    const node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined) node.textContent = text;
    return node;
  }

  function showQuestion(text) {
    log.appendChild(element("li", "question", text));
  }

  function showAnswer(data) {
    const item = element("li", "answer");
    item.appendChild(element("span", "text", data.answer));
    if (data.matches && data.matches.length) {
      const list = element("ul", "matches");
      for (const match of data.matches) {
        const line = match.skill + " (" + Math.round(match.score * 100) + "%)" + (match.evidence ? ": " + match.evidence : "");
        list.appendChild(element("li", "match", line));
      }
      item.appendChild(list);
    }
    const meta = "match " + data.matchQuality + " · " + Math.round(data.timings.totalMs) + " ms" + (data.cacheHit ? " · cached" : "");
    item.appendChild(element("span", "meta", meta));
    item.dataset.correlationId = data.correlationId;
    log.appendChild(item);
  }

  function showError(text) {
    log.appendChild(element("li", "answer error", text));
  }

  async function ask(question) {
    showQuestion(question);
    button.disabled = true;
    try {
      const headers = { "content-type": "application/json" };
      const session = sessionId();
      if (session) headers["x-session-id"] = session;
      const response = await fetch("/api/search", { method: "POST", headers, body: JSON.stringify({ q: question }) });
      const data = await response.json().catch(() => null);
      if (!response.ok || !data) {
        const detail = data && data.detail ? (typeof data.detail === "string" ? data.detail : JSON.stringify(data.detail)) : response.statusText;
        showError("Sorry, that did not work: " + detail);
      } else {
        showAnswer(data);
      }
    } catch (error) {
      showError("Sorry, the server did not answer: " + error);
    } finally {
      button.disabled = false;
      window.scrollTo(0, document.body.scrollHeight);
    }
  }

  form.addEventListener("submit", (event) => {
    event.preventDefault();
    const question = input.value.trim();
    if (!question) return;
    input.value = "";
    ask(question);
  });

  for (const example of document.querySelectorAll(".example")) {
    example.addEventListener("click", () => ask(example.dataset.question));
  }

  if (form.dataset.autoask === "yes" && input.value.trim()) {
    const question = input.value.trim();
    input.value = "";
    ask(question);
  }
})();
