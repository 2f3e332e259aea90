// Dashboard: picking a member in "Go to a member" opens their page.
"use strict";
{
    const script = document.currentScript;
    window.addEventListener("load", () => {
        django.jQuery("#go-to-member select").on("select2:select", (event) => {
            const url = script.dataset.memberUrl.replace("/0/", `/${event.params.data.id}/`);
            window.location.assign(url);
        });
    });
}
