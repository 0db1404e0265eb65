"""The dashboard served at `/ui`: plain HTML pages, small vanilla JS and CSS, shipped in the package.

Pages are rendered on the server without any data: they hold headings, forms and
empty regions. The browser keeps the API key the user pasted in `sessionStorage`
and fills the regions from the `/v1` JSON API with it, so a page shows exactly
what that key may read and an action answers with the server's own error text.
Nothing is fetched from another host (the content security policy forbids it).
"""

from lmrec.serving.ui.pages import PAGES, router

__all__ = ["PAGES", "router"]
