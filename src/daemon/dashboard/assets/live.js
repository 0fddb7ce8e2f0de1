// Live updates over Server-Sent Events. The server sends the page's live
// part ("page") and one event row ("row") already rendered and escaped,
// so this script only places them; without it the page is a static view.
(function () {
  "use strict";
  var conn = document.getElementById("conn");
  var live = document.getElementById("live");
  var list = document.getElementById("events");
  if (!window.EventSource || !conn || !live || !list) {
    return;
  }
  var max = parseInt(list.getAttribute("data-max"), 10) || 40;
  function say(state, text) {
    conn.setAttribute("data-state", state);
    conn.textContent = text;
  }
  var stream = new EventSource("events");
  stream.onopen = function () {
    say("live", "Live: this page updates as teal works.");
  };
  stream.onerror = function () {
    say("down", "Lost the connection to teal; reconnecting…");
  };
  stream.addEventListener("page", function (e) {
    live.innerHTML = e.data;
  });
  stream.addEventListener("row", function (e) {
    var empty = list.querySelector(".none");
    if (empty) {
      empty.remove();
    }
    list.insertAdjacentHTML("afterbegin", e.data);
    while (list.children.length > max) {
      list.lastElementChild.remove();
    }
  });
})();
