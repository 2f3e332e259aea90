// Every page of the CX Manager. Scripts live in files, none inline: the
// Content-Security-Policy runs only the site's own files (settings, CONTENT_SECURITY_POLICY).
"use strict";
{
    // On a laptop the side menu starts closed, so that lists show every column; its «
    // button opens it. Only the user's own choice is kept: admin/js/nav_sidebar.js,
    // deferred, reads the value before DOMContentLoaded, and this file runs before it.
    const key = "django.admin.navSidebarIsOpen";
    if (window.innerWidth < 1280 && localStorage.getItem(key) === null) {
        localStorage.setItem(key, "false");
        document.addEventListener("DOMContentLoaded", () => localStorage.removeItem(key));
    }

    // A form marked data-submit-once sends once: a double click does not send it twice.
    document.addEventListener("submit", (event) => {
        if (event.target.matches("form[data-submit-once]")) {
            event.target.querySelector("[type=submit]").disabled = true;
        }
    });
}
