// 复制链接: the result is a stored determination, so its address can be shared with colleagues in scope.
"use strict";
(function () {
  const button = document.getElementById("copy-link");
  if (!button) return;
  button.addEventListener("click", function () {
    const url = new URL(button.dataset.url, location.href).href;
    const status = document.getElementById("copy-status");
    const done = function () { status.textContent = "链接已复制：" + url; };
    if (navigator.clipboard && window.isSecureContext) {
      navigator.clipboard.writeText(url).then(done, function () { status.textContent = url; });
    } else {
      const box = document.createElement("textarea");
      box.value = url;
      document.body.appendChild(box);
      box.select();
      try { document.execCommand("copy"); done(); } catch (e) { status.textContent = url; }
      box.remove();
    }
  });
})();
