"""An admin change page as a browser sends it back."""

import re


def form_values(html: str) -> dict:
    """What the browser sends back from an admin change form, untouched: a field of
    several values (ticked boxes of one name) as a list."""
    values = {}
    for tag in re.findall(r"<input[^>]*>", html):
        name, value = re.search(r'name="([^"]+)"', tag), re.search(r'value="([^"]*)"', tag)
        if (
            not name
            or 'type="submit"' in tag
            or ('type="checkbox"' in tag and "checked" not in tag)
        ):
            continue
        sent = value.group(1) if value else ("on" if 'type="checkbox"' in tag else "")
        if (name := name.group(1)) in values:  # ticked boxes of one list, their initial
            kept = values[name]
            values[name] = [*kept, sent] if isinstance(kept, list) else [kept, sent]
        else:
            values[name] = sent
    for name, text in re.findall(r'<textarea[^>]*name="([^"]+)"[^>]*>(.*?)</textarea>', html, re.S):
        values[name] = text.strip()
    for name, options in re.findall(r'<select[^>]*name="([^"]+)"[^>]*>(.*?)</select>', html, re.S):
        chosen = re.search(r'<option value="([^"]*)"[^>]*selected', options)
        values[name] = chosen.group(1) if chosen else ""
    return values
