"""Pages people look at, served by Vitrine as clients of its own API: the browser client
(`/vitrine.js`), the operator dashboard (`/dashboard`) and the demo storefront (`/demo/`)."""
