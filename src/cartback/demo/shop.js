// The demo store's own script: a cart kept in this browser, and the calls a store makes
// to cartback. It uses the snippet only through its queue,
//   (window.cartback = window.cartback || []).push(["cart", {...}])
// which works before the async snippet has loaded, and does no harm if it never loads:
// the shop must keep working when cartback is down.
(function () {
  "use strict";

  var STORE = "/demo";
  var KEY = "demo-shop-cart";
  var money = new Intl.NumberFormat("en", { style: "currency", currency: "EUR" });

  function cartback(name, data) {
    (window.cartback = window.cartback || []).push([name, data]);
  }

  function newCart() {
    var random = new Uint8Array(6);
    crypto.getRandomValues(random);
    var id = Array.prototype.map
      .call(random, function (b) {
        return (b + 256).toString(16).slice(1);
      })
      .join("");
    return { id: "web-" + id, currency: "EUR", items: [] };
  }

  function load() {
    try {
      var cart = JSON.parse(localStorage.getItem(KEY));
      if (cart && cart.id && cart.items) return cart;
    } catch (error) {
      /* no storage: a cart for this page only */
    }
    return newCart();
  }

  function absolute(path) {
    return path ? new URL(path, location.href).href : undefined;
  }

  // What cartback is told after every change, and on every page: the whole cart.
  function tell(cart) {
    cartback("cart", {
      id: cart.id,
      currency: cart.currency,
      restore_url: absolute(STORE + "/cart/" + cart.id),
      items: cart.items.map(function (item) {
        return {
          sku: item.sku,
          name: item.name,
          unit_price: item.unit_price,
          quantity: item.quantity,
          url: absolute(item.url),
          image_url: absolute(item.image_url)
        };
      })
    });
  }

  function save(cart) {
    try {
      localStorage.setItem(KEY, JSON.stringify(cart));
    } catch (error) {
      /* private mode: the cart lasts as long as the page */
    }
    showCount(cart);
    tell(cart);
  }

  function count(cart) {
    return cart.items.reduce(function (sum, item) {
      return sum + item.quantity;
    }, 0);
  }

  function total(cart) {
    return cart.items.reduce(function (sum, item) {
      return sum + item.unit_price * item.quantity;
    }, 0);
  }

  function showCount(cart) {
    var badge = document.querySelector("[data-cart-count]");
    if (badge) badge.textContent = String(count(cart));
  }

  function el(name, attributes, text) {
    var node = document.createElement(name);
    for (var key in attributes || {}) node.setAttribute(key, attributes[key]);
    if (text !== undefined) node.textContent = text;
    return node;
  }

  function change(sku, delta) {
    var cart = load();
    cart.items = cart.items
      .map(function (item) {
        if (item.sku === sku) item.quantity += delta;
        return item;
      })
      .filter(function (item) {
        return item.quantity > 0;
      });
    save(cart);
    drawCart(cart);
  }

  // -- pages ----------------------------------------------------------------------------

  function productPage(box) {
    var product = JSON.parse(box.getAttribute("data-product"));
    cartback("product", {
      sku: product.sku,
      name: product.name,
      price: product.price,
      currency: product.currency,
      url: absolute(product.url),
      image_url: absolute(product.image_url)
    });
    box.querySelector(".add").addEventListener("click", function () {
      var cart = load();
      var line = cart.items.filter(function (item) {
        return item.sku === product.sku;
      })[0];
      if (line) line.quantity += 1;
      else {
        cart.items.push({
          sku: product.sku,
          name: product.name,
          unit_price: product.price,
          quantity: 1,
          url: product.url,
          image_url: product.image_url
        });
      }
      save(cart);
      box.querySelector(".added").textContent = product.name + " is in your cart.";
    });
  }

  function drawCart(cart) {
    var place = document.getElementById("cart");
    if (!place) return;
    place.textContent = "";
    if (!cart.items.length) {
      place.appendChild(el("p", { class: "muted" }, "Your cart is empty."));
      return;
    }
    var table = el("table", { class: "items" });
    cart.items.forEach(function (item) {
      var row = el("tr");
      var picture = el("td", { width: "72" });
      if (item.image_url) {
        picture.appendChild(el("img", { src: item.image_url, alt: "", width: "64", height: "64" }));
      }
      var about = el("td");
      var name = el("div", { class: "cart-item" });
      name.appendChild(el("a", { href: item.url || "#" }, item.name));
      about.appendChild(name);
      var quantity = el("div", { class: "muted qty" }, "Quantity: " + item.quantity + " ");
      var less = el("button", { type: "button", "aria-label": "One less " + item.name }, "−");
      var more = el("button", { type: "button", "aria-label": "One more " + item.name }, "+");
      less.addEventListener("click", function () {
        change(item.sku, -1);
      });
      more.addEventListener("click", function () {
        change(item.sku, 1);
      });
      quantity.appendChild(less);
      quantity.appendChild(more);
      about.appendChild(quantity);
      row.appendChild(picture);
      row.appendChild(about);
      row.appendChild(el("td", { class: "num" }, money.format((item.unit_price * item.quantity) / 100)));
      table.appendChild(row);
    });
    var sum = el("tr", { class: "total" });
    sum.appendChild(el("td"));
    sum.appendChild(el("td", {}, "Total"));
    sum.appendChild(el("td", { class: "num cart-total" }, money.format(total(cart) / 100)));
    table.appendChild(sum);
    place.appendChild(table);
    place.appendChild(el("a", { class: "button", href: STORE + "/checkout" }, "Checkout"));
  }

  function checkoutPage(form) {
    var cart = load();
    var summary = document.getElementById("summary");
    summary.textContent =
      count(cart) + " item" + (count(cart) === 1 ? "" : "s") + ", " + money.format(total(cart) / 100);
    if (cart.items.length) cartback("checkout", { id: cart.id });
    form.addEventListener("submit", function (event) {
      event.preventDefault();
      var error = form.querySelector(".error");
      var email = form.email.value.trim();
      if (!cart.items.length) return (error.textContent = "Your cart is empty.");
      if (!/^[^\s@]+@[^\s@]+\.[^\s@]+$/.test(email)) return (error.textContent = "Please enter your email.");
      fetch(STORE + "/order", {
        method: "POST",
        headers: { "Content-Type": "application/json" },
        body: JSON.stringify({
          cart_id: cart.id,
          email: email,
          items: cart.items.map(function (item) {
            return { sku: item.sku, quantity: item.quantity };
          })
        })
      }).then(
        function (response) {
          if (!response.ok) return (error.textContent = "The order did not go through.");
          // bought: the cart is empty now (cartback already knows it was bought)
          cart.items = [];
          save(cart);
          try {
            localStorage.removeItem(KEY);
          } catch (e) {
            /* nothing kept */
          }
          location.href = STORE + "/thanks";
        },
        function () {
          error.textContent = "The store is unreachable; please try again.";
        }
      );
    });
  }

  // The restore link's landing page: cartback's copy of the cart becomes this browser's.
  function restoredPage(data) {
    var restored = JSON.parse(data.textContent);
    var cart = { id: restored.id, currency: restored.currency, items: restored.items };
    save(cart);
  }

  function start() {
    var cart = load();
    showCount(cart);
    var restored = document.getElementById("restored-cart");
    if (restored) return restoredPage(restored);
    // on every page, as a store's template would (the snippet sends only what changed)
    if (cart.items.length) tell(cart);
    var product = document.getElementById("product");
    if (product) productPage(product);
    if (document.getElementById("cart")) drawCart(cart);
    var form = document.getElementById("checkout");
    if (form) checkoutPage(form);
  }

  start();
})();
