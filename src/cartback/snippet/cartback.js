/*! cartback.js | the storefront snippet of cartback, self-hosted cart recovery */
/*
 * Served minified by cartback at /cartback.js; this is the readable source.
 *
 *   <script async src="https://cartback.example/cartback.js" data-key="cb_pk_..."></script>
 *
 * Optional attributes on that tag:
 *   data-layer="dataLayer"  the global array of GA4 ecommerce events to read ("off": none)
 *   data-debug              report the snippet's own errors and misuse with console.warn
 *
 * The store's API, one global (calls pushed before the snippet loads are replayed):
 *   cartback.cart({id, currency, restore_url,
 *                  items: [{sku, name, unit_price, quantity, url, image_url, variant}]})
 *   cartback.product({sku, name, price, currency, url, image_url})
 *   cartback.checkout({id})
 *   cartback.identify({email, phone, consent: {email: true, sms: false}, consent_text})
 *   (window.cartback = window.cartback || []).push(["cart", {...}])   // safe before load
 * Prices are integers in minor units (cents); data-layer prices are converted.
 *
 * Rules it keeps, because it runs on someone else's page: one global, every entry point
 * in try/catch, storage failures tolerated (Safari private mode), no request to anyone
 * but cartback, no eval, nothing that blocks rendering, a persistent queue that survives
 * a failed request and the next page load.
 */
(function (window, document) {
  "use strict";

  var VERSION = "1";
  var previous = window.cartback;
  if (previous && previous.version) return; // included twice: the first copy serves

  var PREFIX = "cartback:";
  var MAX_EVENTS = 20; // per request (wire contract)
  var MAX_BODY = 16384; // bytes per request (wire contract)
  var MAX_QUEUE = 100; // oldest events go first when the server is away for long
  var SEND_DELAY = 200; // ms: events of one interaction go in one request
  var CAPTURE_DELAY = 800; // ms after the last keystroke in a contact field
  var RETRY_MIN = 2000;
  var RETRY_MAX = 300000;
  var TITLE_EVERY = 2000; // ms between the two titles of a waiting tab
  var FAST_SCROLL_UP = 250; // px scrolled up within SCROLL_WINDOW ms: the shopper leaves
  var SCROLL_WINDOW = 300;
  var RTL = { ar: 1, fa: 1, he: 1, ur: 1 };

  var TEXTS = {
    send_cart_title: "Email me my cart",
    send_cart_body:
      "Leaving already? We'll send your cart to your inbox or phone, so you can finish later.",
    send_cart_button: "Send me my cart",
    send_cart_thanks: "Done: your cart is on its way.",
    price_watch_title: "Tell me if the price drops",
    price_watch_body: "We'll let you know if anything in your cart gets cheaper.",
    price_watch_button: "Watch the price",
    price_watch_thanks: "We're watching the price for you.",
    coupon_title: "A discount if you order now",
    coupon_body: "Leave your email and we'll send you a discount code for your cart.",
    coupon_button: "Send me the code",
    coupon_thanks: "Your discount code is on its way.",
    contact_label: "Email or phone number",
    consent: "Send me messages about my cart. I can unsubscribe at any time.",
    close: "Close",
    invalid_contact: "Please enter a valid email address or phone number.",
    consent_required: "Please tick the box so that we may contact you.",
    tab_title: "({count}) Your cart is waiting"
  };

  var debug = false;

  function report(error) {
    if (debug && window.console) window.console.warn("cartback:", error);
  }

  // Every function the page, the browser or a timer calls goes through safe().
  function safe(fn) {
    return function () {
      try {
        return fn.apply(this, arguments);
      } catch (error) {
        report(error);
      }
    };
  }

  function on(target, type, fn, options) {
    try {
      target.addEventListener(type, safe(fn), options || false);
    } catch (error) {
      report(error);
    }
  }

  function later(fn, ms) {
    return window.setTimeout(safe(fn), ms);
  }

  // -- storage: localStorage / sessionStorage, or memory when they refuse ---------------

  function storage(kind) {
    var real = null;
    var memory = {};
    try {
      real = window[kind];
      real.setItem(PREFIX + "probe", "1");
      real.removeItem(PREFIX + "probe");
    } catch (error) {
      real = null;
    }
    return {
      lasting: real !== null,
      get: function (key) {
        try {
          var raw = key in memory ? memory[key] : real ? real.getItem(PREFIX + key) : null;
          return raw == null ? null : JSON.parse(raw);
        } catch (error) {
          return null;
        }
      },
      set: function (key, value) {
        var raw = JSON.stringify(value);
        try {
          real.setItem(PREFIX + key, raw);
          delete memory[key];
        } catch (error) {
          memory[key] = raw; // full, private mode or no storage: this page remembers
        }
      }
    };
  }

  var local = storage("localStorage");
  var session = storage("sessionStorage");

  // -- ids, time, values ----------------------------------------------------------------

  function uuid() {
    var crypto = window.crypto;
    var bytes = new Uint8Array(16);
    var hex = "";
    if (crypto && crypto.getRandomValues) crypto.getRandomValues(bytes);
    else for (var i = 0; i < 16; i++) bytes[i] = (Math.random() * 256) | 0;
    bytes[6] = (bytes[6] & 15) | 64; // version 4
    bytes[8] = (bytes[8] & 63) | 128; // RFC 4122 variant
    for (var j = 0; j < 16; j++) {
      hex += (bytes[j] + 256).toString(16).slice(1);
      if (j === 3 || j === 5 || j === 7 || j === 9) hex += "-";
    }
    return hex;
  }

  function cookie(name, value) {
    try {
      if (value) {
        document.cookie =
          name + "=" + value + ";path=/;max-age=31536000;SameSite=Lax" +
          (location.protocol === "https:" ? ";Secure" : "");
        return value;
      }
      var found = document.cookie.match(new RegExp("(?:^|; )" + name + "=([^;]*)"));
      return found ? found[1] : null;
    } catch (error) {
      return null;
    }
  }

  // The first-party visitor id: in localStorage; where the browser refuses that, in a
  // first-party cookie; else for this page only.
  function visitorId() {
    var id = local.get("visitor") || (!local.lasting && cookie("cartback_v"));
    if (!/^[0-9a-f-]{36}$/.test(id || "")) id = uuid();
    local.set("visitor", id);
    if (!local.lasting) cookie("cartback_v", id);
    return id;
  }

  function str(value, max) {
    if (typeof value === "number" && isFinite(value)) value = String(value);
    if (typeof value !== "string") return undefined;
    value = value.replace(/\s+/g, " ").trim();
    return value ? value.slice(0, max || 300) : undefined;
  }

  function minor(value, max) {
    return typeof value === "number" && value >= 0 && value <= (max || 1e12) && value % 1 === 0
      ? value
      : undefined;
  }

  function currencyCode(value) {
    return typeof value === "string" && /^[A-Za-z]{3}$/.test(value)
      ? value.toUpperCase()
      : undefined;
  }

  function link(value) {
    try {
      var url = new URL(String(value), location.href);
      return /^https?:$/.test(url.protocol) ? url.href.slice(0, 2048) : undefined;
    } catch (error) {
      return undefined;
    }
  }

  function here() {
    return link(location.href.split("#")[0]);
  }

  // The server's own rules (a value it refuses would cost the events sent with it).
  function emailOf(value) {
    value = str(value, 400);
    return value && value.length <= 320 && /^[^@\s<>"']{1,64}@[^@\s<>"']+\.[^@\s<>"']{2,}$/.test(value)
      ? value
      : undefined;
  }

  function phoneOf(value) {
    value = str(value, 400);
    var digits = value ? value.replace(/[^\d]/g, "") : "";
    return value && value.length <= 32 && /^\+?[\d ().-]+$/.test(value) && digits.length >= 7
      ? value
      : undefined;
  }

  // -- the script tag -------------------------------------------------------------------

  var tag = document.currentScript || document.querySelector("script[data-key][src*='cartback']");
  if (!tag || !tag.getAttribute("data-key")) return;
  debug = tag.hasAttribute("data-debug");
  var KEY = tag.getAttribute("data-key");
  var BASE = tag.src.replace(/\/cartback(\.min)?\.js([?#].*)?$/, "");
  var COLLECT = BASE + "/v1/collect";
  var LAYER = tag.getAttribute("data-layer") || "dataLayer";
  var VISITOR = visitorId();

  // -- the queue and its delivery -------------------------------------------------------

  var queue = {
    load: function () {
      var events = local.get("queue");
      return Object.prototype.toString.call(events) === "[object Array]" ? events : [];
    },
    add: function (event) {
      var events = queue.load();
      if (event.type === "cart.updated") {
        // a cart's newest snapshot replaces the ones still waiting: it says all they said
        events = events.filter(function (old) {
          return !(old.type === event.type && old.cart.id === event.cart.id && !inFlight[old.id]);
        });
      }
      events.push(event);
      local.set("queue", events.slice(-MAX_QUEUE));
    },
    remove: function (ids) {
      local.set(
        "queue",
        queue.load().filter(function (event) {
          return !ids[event.id];
        })
      );
    }
  };

  var inFlight = {}; // ids this page is sending
  var suspects = {}; // ids of a batch the server refused: each is retried alone
  var sending = false;
  var timer = 0;
  var retryAt = 0;
  var failures = 0;
  var reached = false; // cartback took the last request: a beacon will likely arrive too

  var lastAt = 0;

  function track(type, data) {
    // strictly increasing times: of two snapshots of a cart, the later one must win
    lastAt = Math.max(Date.now(), lastAt + 1);
    var event = { id: uuid(), type: type, at: new Date(lastAt).toISOString() };
    for (var name in data) if (data[name] !== undefined) event[name] = data[name];
    queue.add(event);
    schedule(SEND_DELAY);
  }

  function schedule(delay) {
    if (timer) return;
    timer = later(function () {
      timer = 0;
      send(false);
    }, Math.max(delay, retryAt - Date.now(), 0));
  }

  function bytes(text) {
    return window.TextEncoder ? new TextEncoder().encode(text).length : text.length * 3;
  }

  function body(events) {
    return JSON.stringify({
      key: KEY,
      visitor: VISITOR,
      webdriver: navigator.webdriver === true,
      events: events
    });
  }

  // The next request's events (at most MAX_EVENTS and MAX_BODY); an event too big to
  // ever fit is dropped, or it would block the queue for good.
  function nextBatch(skip) {
    var batch = [];
    var events = queue.load();
    for (var i = 0; i < events.length && batch.length < MAX_EVENTS; i++) {
      if (inFlight[events[i].id] || skip[events[i].id]) continue;
      if (suspects[events[i].id] && batch.length) break;
      batch.push(events[i]);
      if (suspects[events[i].id]) break;
      if (bytes(body(batch)) > MAX_BODY) {
        batch.pop();
        if (batch.length) break;
        var drop = {};
        drop[events[i].id] = 1;
        queue.remove(drop);
      }
    }
    return batch;
  }

  function idsOf(events) {
    var ids = {};
    for (var i = 0; i < events.length; i++) ids[events[i].id] = 1;
    return ids;
  }

  function send(leaving) {
    if (leaving) return beaconAll();
    if (sending || Date.now() < retryAt) return retryAt && schedule(0);
    var batch = nextBatch({});
    if (!batch.length) return;
    if (!window.fetch) return beaconAll();
    var ids = idsOf(batch);
    for (var id in ids) inFlight[id] = 1;
    sending = true;
    var settle = safe(function (status, retryAfter) {
      sending = false;
      for (var id in ids) delete inFlight[id];
      if (status === 0 || status === 408 || status === 429 || status >= 500) {
        return failed(status === 429 ? retryAfter : null);
      }
      failures = 0;
      retryAt = 0;
      if ((status === 400 || status === 413 || status === 422) && batch.length > 1) {
        for (id in ids) suspects[id] = 1; // one bad event must not cost the others
        return schedule(0);
      }
      // 2xx: delivered; any other 4xx: the server will never take these events
      for (id in ids) delete suspects[id];
      queue.remove(ids);
      if (queue.load().length) schedule(0);
    });
    window
      .fetch(COLLECT, {
        method: "POST",
        body: body(batch),
        keepalive: true,
        credentials: "omit",
        headers: { "Content-Type": "text/plain" }
      })
      .then(
        function (response) {
          reached = response.status < 500 && response.status !== 408 && response.status !== 429;
          settle(response.status, response.headers.get("Retry-After"));
        },
        function () {
          reached = false;
          settle(0, null);
        }
      );
  }

  function failed(retryAfter) {
    var wait = Number(retryAfter);
    if (retryAfter && !isFinite(wait)) wait = (Date.parse(retryAfter) - Date.now()) / 1000;
    wait = wait > 0 ? Math.min(wait * 1000, 3600000) : 0;
    if (!wait) {
      wait = Math.min(RETRY_MAX, RETRY_MIN * Math.pow(2, failures)) * (0.75 + Math.random() / 4);
      failures++;
    }
    retryAt = Date.now() + wait;
    schedule(0);
  }

  // The page is going away: hand what is queued to the browser. When cartback answered a
  // moment ago the beacons will arrive, so they leave the queue; otherwise they stay and
  // the next page sends them again (the server drops an event id it has seen).
  function beaconAll() {
    if (!navigator.sendBeacon) return;
    var sent = {};
    for (var batch = nextBatch(sent); batch.length; batch = nextBatch(sent)) {
      var ids = idsOf(batch);
      var ok = false;
      try {
        ok = navigator.sendBeacon(COLLECT, body(batch));
      } catch (error) {
        report(error);
      }
      if (!ok) break;
      for (var id in ids) sent[id] = 1;
      if (reached) queue.remove(ids);
    }
  }

  // -- the remote configuration ---------------------------------------------------------

  var config = null;
  var texts = TEXTS;

  function loadConfig() {
    if (!window.fetch) return;
    window
      .fetch(BASE + "/v1/collect/config?key=" + encodeURIComponent(KEY), { credentials: "omit" })
      .then(function (response) {
        reached = response.ok;
        return response.ok ? response.json() : null;
      })
      .then(safe(applyConfig), report);
  }

  function applyConfig(found) {
    if (!found || typeof found !== "object") return;
    config = found;
    config.capture = config.capture || {};
    config.prompts = config.prompts || {};
    texts = {};
    for (var key in TEXTS) texts[key] = TEXTS[key];
    var given = config.texts || {};
    for (var name in given) if (typeof given[name] === "string" && given[name]) texts[name] = given[name];
    captureFields(false);
    armPrompts();
  }

  function strict() {
    return !config || config.consent_mode !== "default"; // unknown modes count as EU
  }

  // -- what the store tells us ----------------------------------------------------------

  var cartState = local.get("cart") || {};

  function item(raw) {
    if (!raw || typeof raw !== "object") return null;
    var line = {
      sku: str(raw.sku, 200),
      name: str(raw.name, 500),
      unit_price: minor(raw.unit_price !== undefined ? raw.unit_price : raw.price),
      quantity: minor(raw.quantity === undefined ? 1 : raw.quantity, 100000),
      url: raw.url ? link(raw.url) : undefined,
      image_url: raw.image_url ? link(raw.image_url) : undefined,
      variant: str(raw.variant, 200)
    };
    if (!line.sku || !line.name || line.unit_price === undefined || !line.quantity) return null;
    return line;
  }

  function cart(raw) {
    raw = raw || {};
    var currency = currencyCode(raw.currency) || cartState.currency;
    if (!currency) throw new Error("cart() needs a currency (ISO 4217)");
    var items = [];
    var count = 0;
    var given = raw.items || [];
    for (var i = 0; i < given.length && items.length < 100; i++) {
      var line = item(given[i]);
      if (line) {
        items.push(line);
        count += line.quantity;
      } else report("cart item skipped (needs sku, name, unit_price in minor units, quantity)");
    }
    var snapshot = {
      id: str(raw.id, 200) || cartState.id || uuid(),
      currency: currency,
      items: items,
      restore_url: raw.restore_url ? link(raw.restore_url) : undefined
    };
    var signature = JSON.stringify(snapshot);
    // an unchanged cart is no news, nor is an empty one that was never filled
    var changed = signature !== cartState.signature && (count > 0 || cartState.count > 0);
    cartState = { id: snapshot.id, currency: currency, count: count, signature: signature };
    if (!count) cartState = { currency: currency, signature: signature }; // the next cart is new
    local.set("cart", cartState);
    if (changed) track("cart.updated", { cart: snapshot });
    if (count) armBackGesture();
  }

  function product(raw) {
    raw = raw || {};
    var data = {
      sku: str(raw.sku, 200),
      name: str(raw.name, 500),
      price: minor(raw.price),
      currency: currencyCode(raw.currency),
      url: link(raw.url || here()),
      image_url: raw.image_url ? link(raw.image_url) : undefined
    };
    if (!data.sku || !data.name || data.price === undefined || !data.currency) {
      throw new Error("product() needs sku, name, price (minor units) and currency");
    }
    track("product.viewed", { product: data });
  }

  function checkout(raw) {
    var id = str(raw && raw.id, 200) || cartState.id;
    track("checkout.started", { cart: id ? { id: id } : {} });
  }

  function consentOf(given, email, phone) {
    if (given === undefined || given === null) return undefined;
    var consent = {};
    if (email) consent.email = typeof given === "object" ? given.email === true : given === true;
    if (phone) consent.sms = typeof given === "object" ? given.sms === true : given === true;
    return consent;
  }

  function identify(raw) {
    raw = raw || {};
    var email = emailOf(raw.email);
    var phone = phoneOf(raw.phone);
    if (!email && !phone) throw new Error("identify() needs a valid email or phone");
    track("contact.captured", {
      email: email,
      phone: phone,
      consent: consentOf(raw.consent, email, phone),
      consent_text: str(raw.consent_text, 1000),
      source: "field"
    });
    knownContact();
  }

  // -- the data layer (GA4 ecommerce events), read if the page has one ------------------

  function fractionDigits(currency) {
    try {
      return new Intl.NumberFormat("en", { style: "currency", currency: currency })
        .resolvedOptions().maximumFractionDigits;
    } catch (error) {
      return 2;
    }
  }

  function fromLayerItem(raw, currency) {
    var price = Number(raw.price);
    if (!isFinite(price)) return null;
    return {
      sku: raw.item_id,
      name: raw.item_name,
      unit_price: Math.round(price * Math.pow(10, fractionDigits(currency))),
      quantity: raw.quantity === undefined ? 1 : Number(raw.quantity),
      url: raw.item_url,
      image_url: raw.item_image_url || raw.image_url
    };
  }

  var layerItems = local.get("layer") || [];

  function layerCart(items, currency) {
    layerItems = items;
    local.set("layer", items);
    cart({ currency: currency, items: items });
  }

  // The store's own calls win: once its pages call the API, the layer's events are not
  // read too (two sources would overwrite each other's cart).
  function onLayerEntry(entry) {
    if (local.get("api")) return;
    var name = entry && entry.event;
    var data = entry && entry.ecommerce;
    if (entry && entry[0] === "event") {
      name = entry[1]; // gtag("event", name, params) pushes its arguments object
      data = entry[2];
    }
    if (!name || !data || typeof data !== "object") return;
    var currency = currencyCode(data.currency) || cartState.currency;
    var items = [];
    var given = data.items || [];
    for (var i = 0; i < given.length; i++) {
      var line = given[i] && currency && fromLayerItem(given[i], currency);
      if (line) items.push(line);
    }
    if (!currency) return;
    if (name === "view_item" && items[0]) {
      product({
        sku: items[0].sku, name: items[0].name, price: items[0].unit_price,
        currency: currency, image_url: items[0].image_url
      });
    } else if (name === "add_to_cart" || name === "remove_from_cart") {
      var next = layerItems.slice();
      for (var j = 0; j < items.length; j++) merge(next, items[j], name === "add_to_cart" ? 1 : -1);
      layerCart(next, currency);
    } else if (name === "view_cart" || name === "begin_checkout") {
      layerCart(items, currency);
      if (name === "begin_checkout") checkout();
    } else if (name === "purchase") {
      layerItems = [];
      local.set("layer", []);
      cartState = {};
      local.set("cart", cartState);
    }
  }

  function merge(items, line, sign) {
    for (var i = 0; i < items.length; i++) {
      if (items[i].sku === line.sku) {
        items[i].quantity += sign * line.quantity;
        if (items[i].quantity <= 0) items.splice(i, 1);
        return;
      }
    }
    if (sign > 0) items.push(line);
  }

  var watching = false;

  // Only a data layer the page made is read: the snippet adds no global of its own.
  function watchLayer() {
    var layer = LAYER !== "off" && !watching && window[LAYER];
    if (!layer || typeof layer.push !== "function" || typeof layer.length !== "number") return;
    watching = true;
    var seen = layer.length;
    var push = layer.push;
    layer.push = function () {
      var result = push.apply(layer, arguments);
      for (var i = 0; i < arguments.length; i++) safe(onLayerEntry)(arguments[i]);
      return result;
    };
    // what the page pushed before the snippet loaded; only the latest view/cart matter
    for (var i = 0; i < seen; i++) safe(onLayerEntry)(layer[i]);
  }

  // -- contact fields: captured as typed, when the consent mode allows -----------------

  var captureTimer = 0;

  function matches(element, selectors) {
    if (!element || !element.matches || !selectors) return false;
    if (typeof selectors === "string") selectors = [selectors];
    for (var i = 0; i < selectors.length; i++) {
      try {
        if (element.matches(selectors[i])) return true;
      } catch (error) {
        report(error); // a store's bad selector spoils only itself
      }
    }
    return false;
  }

  function valueOf(selectors, check) {
    if (typeof selectors === "string") selectors = [selectors];
    for (var i = 0; selectors && i < selectors.length; i++) {
      try {
        var fields = document.querySelectorAll(selectors[i]);
        for (var j = 0; j < fields.length; j++) {
          if (fields[j].type !== "password" && check(fields[j].value)) return check(fields[j].value);
        }
      } catch (error) {
        report(error);
      }
    }
    return undefined;
  }

  function checkbox() {
    var selector = config && config.capture.consent_checkbox;
    try {
      return selector ? document.querySelector(selector) : null;
    } catch (error) {
      return null;
    }
  }

  // The text the shopper saw beside the box: its label, else the store's configured text.
  function shownText(box) {
    var label = box.labels && box.labels[0];
    if (!label && box.closest) label = box.closest("label");
    return str(label && label.textContent, 1000) || str(config.capture.consent_text, 1000);
  }

  function onField(event) {
    if (!config) return;
    var target = event.target;
    var capture = config.capture;
    if (capture.consent_checkbox && matches(target, capture.consent_checkbox)) {
      window.clearTimeout(captureTimer);
      return captureFields(true);
    }
    if (matches(target, capture.email) || matches(target, capture.phone)) {
      window.clearTimeout(captureTimer);
      captureTimer = later(function () {
        captureFields(false);
      }, event.type === "input" ? CAPTURE_DELAY : 0);
    }
  }

  function captureFields(boxChanged) {
    var capture = config.capture;
    var email = valueOf(capture.email, emailOf);
    var phone = valueOf(capture.phone, phoneOf);
    if (!email && !phone) return;
    var box = checkbox();
    var agreed = !!(box && box.checked);
    var granted = session.get("granted");
    // EU mode: nothing leaves the page before the box is ticked; unticking it after a
    // capture is a withdrawal, which is sent
    if (strict() && !agreed && !(granted && boxChanged)) return;
    var data = { email: email, phone: phone, source: "field" };
    // a ticked box is consent and unticking it withdraws; a box never ticked says nothing
    // (in default mode the store's basis decides), so no consent is sent with it
    if (box && (agreed || granted)) {
      data.consent = consentOf(agreed, email, phone);
      data.consent_text = shownText(box);
      session.set("granted", agreed);
    }
    var signature = JSON.stringify(data);
    if (signature === session.get("captured")) return;
    session.set("captured", signature);
    track("contact.captured", data);
    if (agreed || !strict()) knownContact();
  }

  function knownContact() {
    local.set("contact", 1);
  }

  // -- on-site prompts ------------------------------------------------------------------

  var prompt = null; // the open one: {host, root, dialog, name, offer, before, done}
  var exitFrom = Infinity; // exit intent counts from this time on
  var scrollMark = null;
  var pushedState = false;
  var CSS =
    ":host{all:initial}" +
    ".overlay{position:fixed;inset:0;z-index:2147483647;display:flex;align-items:center;" +
    "justify-content:center;padding:1rem;background:rgba(17,24,39,.55);color:#111827;" +
    "font:16px/1.5 system-ui,-apple-system,'Segoe UI',Roboto,sans-serif}" +
    ".dialog{position:relative;box-sizing:border-box;width:100%;max-width:26rem;padding:1.5rem;" +
    "border-radius:12px;background:#fff;box-shadow:0 20px 50px rgba(0,0,0,.3)}" +
    "h2{margin:0 2.5rem .5rem 0;font-size:1.25rem;line-height:1.3}" +
    "[dir=rtl] h2{margin:0 0 .5rem 2.5rem}p{margin:0 0 1rem}" +
    "label{display:block;margin-bottom:.25rem;font-weight:600}" +
    "input[type=text]{box-sizing:border-box;width:100%;padding:.6rem .75rem;font:inherit;" +
    "color:inherit;border:1px solid #6b7280;border-radius:8px;background:#fff}" +
    ".consent{display:flex;gap:.5rem;align-items:flex-start;margin-top:.75rem;" +
    "font-weight:400;font-size:.9rem}.consent input{margin:.25rem 0 0}" +
    ".error{margin:.5rem 0 0;color:#b91c1c;font-size:.9rem}.error:empty{display:none}" +
    "button{font:inherit;cursor:pointer}" +
    ".submit{width:100%;margin-top:1rem;padding:.7rem;border:0;border-radius:8px;" +
    "background:#111827;color:#fff;font-weight:600}" +
    ".close{position:absolute;top:.5rem;right:.5rem;width:2.75rem;height:2.75rem;border:0;" +
    "border-radius:8px;background:none;color:#374151;font-size:1.5rem;line-height:1}" +
    "[dir=rtl] .close{right:auto;left:.5rem}" +
    ":focus-visible{outline:3px solid #2563eb;outline-offset:2px}" +
    "@media (prefers-reduced-motion:no-preference){.dialog{animation:in .15s ease-out}}" +
    "@keyframes in{from{opacity:0;transform:translateY(8px)}}";

  function el(name, attributes, children) {
    var node = document.createElement(name);
    for (var key in attributes) node.setAttribute(key, attributes[key]);
    children = children || [];
    for (var i = 0; i < children.length; i++) {
      var child = children[i];
      if (child) node.appendChild(typeof child === "string" ? document.createTextNode(child) : child);
    }
    return node;
  }

  function style(root) {
    try {
      // a constructed sheet is not inline style: a store's strict CSP still allows it
      var sheet = new CSSStyleSheet();
      sheet.replaceSync(CSS);
      root.adoptedStyleSheets = [sheet];
    } catch (error) {
      root.appendChild(el("style", {}, [CSS]));
    }
  }

  function mayPrompt() {
    return (
      config && !prompt && cartState.count > 0 && !local.get("contact") && !session.get("prompted")
    );
  }

  function armPrompts() {
    var prompts = config.prompts;
    var timed = prompts.timed;
    var exit = prompts.exit_intent;
    if (timed && timed.enabled) {
      later(function () {
        show("timed", timed);
      }, (timed.delay_seconds || 0) * 1000);
    }
    if (exit && exit.enabled) {
      exitFrom = Date.now() + (exit.delay_seconds || 0) * 1000;
      later(armBackGesture, (exit.delay_seconds || 0) * 1000);
    }
  }

  function touchScreen() {
    return !!(window.matchMedia && window.matchMedia("(pointer: coarse)").matches);
  }

  function exitIntent() {
    if (Date.now() >= exitFrom) show("exit_intent", config.prompts.exit_intent);
  }

  // Desktop: the pointer leaves the page through the top (towards the tabs and the URL).
  function onMouseOut(event) {
    if (!event.relatedTarget && event.clientY <= 0 && config) exitIntent();
  }

  // Mobile: a fast scroll up, as to reach the address bar.
  function onScroll() {
    if (!config || !touchScreen()) return;
    var now = Date.now();
    var y = window.pageYOffset;
    if (!scrollMark || y > scrollMark.y || now - scrollMark.at > SCROLL_WINDOW) {
      scrollMark = { y: y, at: now };
    } else if (scrollMark.y - y >= FAST_SCROLL_UP) {
      scrollMark = null;
      exitIntent();
    }
  }

  // Mobile: the back gesture. One extra history entry for this same URL, added only when
  // a prompt could show; going back to it opens the prompt instead of leaving.
  function armBackGesture() {
    var exit = config && config.prompts.exit_intent;
    if (!exit || !exit.enabled || Date.now() < exitFrom || !touchScreen() || !mayPrompt()) return;
    if (pushedState || !window.history || !history.pushState) return;
    if (history.state && history.state.cartback) return;
    history.pushState({ cartback: 1 }, "", location.href);
    pushedState = true;
  }

  function onPopState() {
    if (!pushedState || (history.state && history.state.cartback)) return;
    pushedState = false;
    exitIntent();
  }

  function show(name, settings) {
    if (!settings || !mayPrompt()) return;
    var offer = settings.offer;
    if (offer !== "send_cart" && offer !== "price_watch" && offer !== "coupon") return;
    if (!document.body || !document.body.attachShadow) return;
    session.set("prompted", name);
    render(name, offer);
    track("prompt.shown", { prompt: name, offer: offer });
  }

  function text(name) {
    return texts[name] || TEXTS[name] || "";
  }

  function render(name, offer) {
    var host = el("div", { "data-cartback": "prompt" });
    var root = host.attachShadow({ mode: "open" });
    style(root);
    var locale = str(config.locale, 20) || "en";
    var askConsent = strict() || offer === "price_watch";
    var input = el("input", {
      id: "contact", type: "text", name: "contact", autocomplete: "email",
      inputmode: "email", required: "", "aria-describedby": "error"
    });
    var box = askConsent ? el("input", { id: "consent", type: "checkbox", name: "consent" }) : null;
    var consentText = str(texts.consent, 1000) || str(config.capture.consent_text, 1000);
    var error = el("p", { id: "error", class: "error", "aria-live": "assertive" });
    var form = el("form", { novalidate: "" }, [
      el("label", { for: "contact" }, [text("contact_label")]),
      input,
      box && el("label", { class: "consent", for: "consent" }, [box, el("span", {}, [consentText])]),
      error,
      el("button", { type: "submit", class: "submit" }, [text(offer + "_button")])
    ]);
    var close = el("button", { type: "button", class: "close", "aria-label": text("close") }, [
      "\u00d7"
    ]);
    var dialog = el(
      "div",
      {
        class: "dialog", role: "dialog", "aria-modal": "true", "aria-labelledby": "title",
        "aria-describedby": "body", lang: locale, dir: RTL[locale.slice(0, 2)] ? "rtl" : "ltr"
      },
      [
        el("h2", { id: "title" }, [text(offer + "_title")]),
        el("p", { id: "body" }, [text(offer + "_body")]),
        form,
        close // last in the tab order, first in the corner
      ]
    );
    var overlay = el("div", { class: "overlay" }, [dialog]);
    root.appendChild(overlay);
    prompt = {
      host: host, root: root, dialog: dialog, close: close, name: name, offer: offer,
      before: document.activeElement, done: false
    };
    on(close, "click", function () {
      hide();
    });
    on(overlay, "click", function (event) {
      if (event.target === overlay) hide();
    });
    on(form, "submit", function (event) {
      event.preventDefault();
      submit(input, box, consentText, error);
    });
    document.body.appendChild(host);
    input.focus();
  }

  function submit(input, box, consentText, error) {
    var value = input.value;
    var email = emailOf(value);
    var phone = email ? undefined : phoneOf(value);
    if (!email && !phone) {
      error.textContent = text("invalid_contact");
      input.setAttribute("aria-invalid", "true");
      return input.focus();
    }
    if (box && !box.checked) {
      error.textContent = text("consent_required");
      return box.focus();
    }
    track("prompt.submitted", {
      prompt: prompt.name,
      offer: prompt.offer,
      email: email,
      phone: phone,
      consent: box ? consentOf(true, email, phone) : undefined,
      consent_text: box ? consentText : undefined
    });
    knownContact();
    prompt.done = true;
    var thanks = el("p", { role: "status" }, [text(prompt.offer + "_thanks")]);
    var ok = el("button", { type: "button", class: "submit" }, [text("close")]);
    on(ok, "click", function () {
      hide();
    });
    var form = input.form;
    form.parentNode.replaceChild(el("div", {}, [thanks, ok]), form);
    prompt.dialog.removeChild(prompt.close); // one way out now: the button under the thanks
    ok.focus();
  }

  function hide() {
    if (!prompt) return;
    var closing = prompt;
    prompt = null;
    if (!closing.done) track("prompt.dismissed", { prompt: closing.name, offer: closing.offer });
    if (closing.host.parentNode) closing.host.parentNode.removeChild(closing.host);
    if (pushedState && history.state && history.state.cartback) {
      pushedState = false;
      history.back(); // the extra entry served its purpose: the next back leaves
    }
    var before = closing.before;
    if (before && before.focus && document.contains(before)) before.focus();
  }

  function focusable() {
    return prompt.dialog.querySelectorAll("button,input,[href],select,textarea");
  }

  // Escape closes; Tab and Shift+Tab go round inside the dialog.
  function onKeyDown(event) {
    if (!prompt) return;
    if (event.key === "Escape" || event.key === "Esc") {
      event.preventDefault();
      return hide();
    }
    if (event.key !== "Tab") return;
    var items = focusable();
    var first = items[0];
    var last = items[items.length - 1];
    var active = prompt.root.activeElement;
    if (event.shiftKey ? active === first || !active : active === last || !active) {
      event.preventDefault();
      (event.shiftKey ? last : first).focus();
    }
  }

  // Focus that lands outside the dialog (a click, a screen reader) is brought back.
  function onFocusIn(event) {
    if (prompt && event.target !== prompt.host) focusable()[0].focus();
  }

  // -- the waiting tab: its title alternates while the shopper is elsewhere -------------

  var nudge = null;

  function away() {
    if (nudge || !(cartState.count > 0) || document.hasFocus()) return;
    var line = text("tab_title").replace("{count}", String(cartState.count));
    nudge = { original: document.title, line: line };
    nudge.timer = window.setInterval(
      safe(function () {
        document.title = document.title === line ? nudge.original : line;
      }),
      TITLE_EVERY
    );
    document.title = line;
  }

  function back() {
    if (!nudge) return;
    window.clearInterval(nudge.timer);
    if (document.title === nudge.line) document.title = nudge.original;
    nudge = null;
  }

  // -- landing from a reminder ----------------------------------------------------------

  // The restore link of a reminder lands here with utm_source=cartback: this shopper is
  // known, so no prompt asks for a contact again.
  function landing() {
    if (/[?&]utm_source=cartback(&|$)/.test(location.search)) knownContact();
  }

  // -- start ----------------------------------------------------------------------------

  function direct(fn) {
    return safe(function () {
      local.set("api", 1);
      return fn.apply(null, arguments);
    });
  }

  var api = {
    version: VERSION,
    cart: direct(cart),
    product: direct(product),
    checkout: direct(checkout),
    identify: safe(identify),
    push: safe(function () {
      for (var i = 0; i < arguments.length; i++) call(arguments[i]);
    })
  };

  function call(entry) {
    if (entry && typeof api[entry[0]] === "function" && entry[0] !== "push") {
      api[entry[0]].apply(null, Array.prototype.slice.call(entry, 1));
    }
  }

  safe(function () {
    window.cartback = api;
    landing();
    on(document, "input", onField, true);
    on(document, "change", onField, true);
    on(document, "mouseout", onMouseOut);
    on(window, "scroll", onScroll, { passive: true });
    on(window, "popstate", onPopState);
    on(document, "keydown", onKeyDown, true);
    on(document, "focusin", onFocusIn);
    on(window, "blur", away);
    on(window, "focus", back);
    on(document, "visibilitychange", function () {
      if (document.visibilityState === "hidden") {
        away();
        send(true);
      } else back();
    });
    on(window, "pagehide", function () {
      send(true);
    });
    on(window, "online", function () {
      retryAt = 0;
      schedule(0);
    });
    on(window, "load", watchLayer); // a data layer made after the snippet ran
    if (previous && previous.length) for (var i = 0; i < previous.length; i++) safe(call)(previous[i]);
    watchLayer();
    loadConfig();
    if (queue.load().length) schedule(SEND_DELAY); // what an earlier page could not send
  })();
})(window, document);
