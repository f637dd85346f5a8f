// The demo shop: the synthetic catalog as a storefront, built only on vitrine.js and the API.
import { Vitrine } from "/vitrine.js";

const vitrine = new Vitrine({ flushMs: 100 });
const $ = (id) => document.getElementById(id);
const view = $("view");
const CART_KEY = "demo.cart";
let categories = [];

const cart = {
  items() { return JSON.parse(localStorage.getItem(CART_KEY) || "[]"); },
  save(items) { localStorage.setItem(CART_KEY, JSON.stringify(items)); $("cart-count").textContent = items.length; },
  add(item, category) { const items = this.items().filter((x) => x.item !== item); items.push({ item, category }); this.save(items); },
  remove(item) { this.save(this.items().filter((x) => x.item !== item)); },
};

// -- small rendering helpers ---------------------------------------------------------------
function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === "on") for (const [ev, fn] of Object.entries(v)) el.addEventListener(ev, fn);
    else if (v !== null && v !== undefined && v !== false) el.setAttribute(k, v === true ? "" : v);
  }
  for (const c of children.flat()) if (c !== null && c !== undefined) el.append(c.nodeType ? c : String(c));
  return el;
}

function hue(text) { let x = 0; for (const ch of text) x = (x * 31 + ch.charCodeAt(0)) % 360; return x; }

function picture(item, category) {
  // A placeholder drawn from the ids (no image files, no network): colour by department, shade by item.
  const dept = (category || "misc").split("/")[0];
  const svg = document.createElementNS("http://www.w3.org/2000/svg", "svg");
  svg.setAttribute("viewBox", "0 0 160 120"); svg.setAttribute("role", "img");
  svg.setAttribute("aria-label", `Picture of ${itemName(item)}`);
  svg.innerHTML = `<rect width="160" height="120" fill="hsl(${hue(dept)} 55% ${70 + (hue(item) % 20)}%)"/>` +
    `<circle cx="${40 + (hue(item) % 80)}" cy="60" r="${22 + (hue(item + "r") % 18)}" fill="hsl(${hue(dept)} 50% 38% / .5)"/>` +
    `<text x="10" y="110" font-size="12" fill="#1d232b" font-family="system-ui">${dept}</text>`;
  return svg;
}

function itemName(item) { return "Item " + item.replace(/^i0*/, ""); }
function categoryName(category) { return (category || "").replace("/", " · "); }

function productLink(item, category) { return `#/p/${encodeURIComponent(item)}?c=${encodeURIComponent(category || "")}`; }

function itemCard(x) {
  return h("article", { class: "item", "data-item": x.item_id, "data-category": x.category || "" },
    h("a", { class: "thumb", href: productLink(x.item_id, x.category), tabindex: "-1", "aria-hidden": "true" }, picture(x.item_id, x.category)),
    h("div", { class: "body" },
      h("a", { class: "name", href: productLink(x.item_id, x.category) }, itemName(x.item_id)),
      h("span", { class: "cat" }, categoryName(x.category)),
      h("span", { class: "reason", title: "Why this item is here" }, x.reason.replace(/\bi0*(\d+)\b/g, "Item $1"))));
}

function section(title, answer, placement) {
  const explain = `${answer.rung} list${answer.live_signals ? "" : " · live signals unavailable"}` +
    (answer.experiment ? ` · experiment ${answer.experiment}: ${answer.variant}` : "");
  return h("section", { "data-placement": placement, "data-rung": answer.rung, "aria-label": title },
    h("h2", {}, title), h("p", { class: "meta" }, "Answered by the ", h("strong", {}, explain)),
    h("div", { class: "grid" }, answer.items.map(itemCard)));
}

function hero(slot) {
  const content = slot?.content || {};
  const why = slot?.source === "rule" ? `chosen by rule “${slot.rule}”`
    : slot?.source === "experiment" ? `experiment ${slot.experiment}, variant ${slot.variant}` : "the default banner";
  return h("div", { class: "hero", "data-slot": "home_hero", "data-source": slot?.source || "default",
                    "data-variant": slot?.variant || "", "data-rule": slot?.rule || "",
                    style: content.color ? `background:${content.color}` : null },
    h("h1", {}, content.title || "Welcome to the demo shop"),
    h("p", {}, content.subtitle || "Browse a department: the shop follows what you look at."),
    h("p", { class: "why" }, "Hero: " + why));
}

async function show(...nodes) { view.replaceChildren(...nodes); document.body.dataset.page = location.hash || "#/"; view.dataset.ready = "true"; }

// -- pages -----------------------------------------------------------------------------------
async function home() {
  const page = await vitrine.page({ placements: ["home"], slots: ["home_hero", "promo"], k: 12, page: "home" });
  const trending = await vitrine.trending({ k: 6 });
  const promo = page.slots.promo?.content;
  await show(hero(page.slots.home_hero),
    promo ? h("p", { class: "note", "data-slot": "promo", "data-variant": page.slots.promo.variant || "" }, promo.text || "") : "",
    section("Picked for you", page.recommendations.home, "home"), section("Trending now", trending, "trending"));
}

async function categoryPage(category) {
  vitrine.categoryView(category);
  await vitrine.flush();
  const page = await vitrine.page({ placements: ["category"], category, k: 24, page: "category" });
  await show(h("h1", {}, categoryName(category)), section(`Best in ${categoryName(category)} for you`, page.recommendations.category, "category"));
}

async function productPage(item, category) {
  vitrine.view(item, { category: category || undefined });
  await vitrine.flush();
  const page = await vitrine.page({ placements: ["product"], itemIds: [item], k: 12, page: "product" });
  const similar = await vitrine.similar(item, { k: 6 }).catch(() => null);
  const added = h("span", { role: "status" });
  await show(h("div", { class: "product" },
      h("div", { class: "thumb" }, picture(item, category)),
      h("div", {}, h("h1", {}, itemName(item)), h("p", { class: "meta" }, categoryName(category)),
        h("div", { class: "actions" },
          h("button", { id: "add-to-cart", on: { click: async () => { cart.add(item, category); vitrine.addToCart(item, { category: category || undefined }); added.textContent = "Added to your cart."; } } }, "Add to cart"),
          h("a", { href: "#/cart" }, "Go to cart")), added)),
    section("You may also like", page.recommendations.product, "product"),
    similar ? section("Similar items", similar, "similar") : "");
}

async function cartPage() {
  const items = cart.items();
  const rows = items.map(({ item, category }) => h("tr", { "data-item": item },
    h("td", {}, h("a", { href: productLink(item, category) }, itemName(item))), h("td", {}, categoryName(category)),
    h("td", {}, h("button", { class: "secondary", on: { click: () => { cart.remove(item); vitrine.removeFromCart(item); cartPage(); } } }, "Remove"))));
  const buy = h("button", { id: "buy", on: { click: async () => {
    for (const { item, category } of items) vitrine.purchase(item, { category: category || undefined, quantity: 1 });
    cart.save([]);
    await vitrine.flush();
    await show(h("h1", {}, "Thank you!"), h("p", { role: "status" }, `You bought ${items.length} item(s).`), h("a", { href: "#/" }, "Back to the shop"));
  } } }, "Buy now");
  const recs = items.length ? (await vitrine.page({ placements: ["cart"], itemIds: items.map((x) => x.item), k: 8, page: "cart" })).recommendations.cart : null;
  await show(h("h1", {}, "Your cart"),
    items.length ? h("table", { class: "cart" }, h("tbody", {}, rows)) : h("p", {}, "Your cart is empty."),
    items.length ? buy : "", recs ? section("Goes well with your cart", recs, "cart") : "");
}

async function searchPage(query) {
  vitrine.search(query);
  const q = query.toLowerCase();
  const found = categories.filter((c) => c.category.toLowerCase().includes(q));
  await show(h("h1", {}, `Results for “${query}”`),
    found.length ? h("ul", {}, found.slice(0, 30).map((c) => h("li", {}, h("a", { href: `#/c/${encodeURIComponent(c.category)}` }, categoryName(c.category)), ` (${c.items} items)`)))
      : h("p", {}, "No department or category matches."));
}

async function route() {
  view.dataset.ready = "false";
  const [path, query] = location.hash.replace(/^#/, "").split("?");
  const params = new URLSearchParams(query || "");
  const parts = (path || "/").split("/").filter(Boolean).map(decodeURIComponent);
  try {
    if (parts[0] === "c") await categoryPage(parts[1]);
    else if (parts[0] === "p") await productPage(parts[1], params.get("c"));
    else if (parts[0] === "cart") await cartPage();
    else if (parts[0] === "search") await searchPage(params.get("q") || "");
    else await home();
  } catch (err) {
    await show(h("p", { class: "note", role: "alert" }, "Something went wrong: " + (err.message || err)));
  }
  view.focus({ preventScroll: true });
}

async function start() {
  $("session").textContent = vitrine.sessionId.slice(0, 8);
  $("user").value = vitrine.userId || "";
  $("user").addEventListener("change", (e) => { vitrine.login(e.target.value.trim() || null); route(); });
  $("search").addEventListener("submit", (e) => { e.preventDefault(); location.hash = `#/search?q=${encodeURIComponent($("q").value)}`; });
  vitrine.onSent(({ pending }) => { $("pending").textContent = pending ? `${pending} event(s) waiting` : ""; });
  cart.save(cart.items());
  categories = (await (await fetch("/v1/categories")).json()).categories;
  const departments = [...new Set(categories.map((c) => c.category.split("/")[0]))].sort();
  $("departments").replaceChildren(...departments.map((d) => {
    const first = categories.find((c) => c.category.startsWith(d + "/"));
    return h("a", { href: `#/c/${encodeURIComponent(first.category)}` }, d);
  }));
  window.addEventListener("hashchange", route);
  window.vitrine = vitrine; // for the curious (and the browser tests)
  await route();
}

start();
