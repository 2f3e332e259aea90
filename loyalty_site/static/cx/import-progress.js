// An import's page while it is checked or imported: the progress, read every second
// from the state URL, until it is done; then the page is loaded again with the result.
"use strict";
{
    const url = document.currentScript.dataset.stateUrl;
    (function poll() {
        fetch(url, {credentials: "same-origin"})
            .then((r) => r.json())
            .then((s) => {
                document.getElementById("progress").value = s.percent;
                document.getElementById("percent").textContent = s.percent + "%";
                document.getElementById("status").textContent = s.label;
                if (s.done) { window.location.reload(); } else { setTimeout(poll, 1000); }
            })
            .catch(() => setTimeout(poll, 3000));
    })();
}
