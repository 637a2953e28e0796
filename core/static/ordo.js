// Ordo's small scripts, no framework: confirmation before destructive actions, filters
// that apply on change, repeated rows (order lines, contacts, addresses) and a live
// preview of line and order totals. The server validates and computes the real amounts.
(function () {
  "use strict";

  const lang = document.documentElement.lang || "en";

  // --- Confirmation: forms marked data-confirm ask in the shared dialog first ---------
  function setUpConfirmations() {
    const dialogEl = document.getElementById("ordo-confirm");
    const canUseDialog = dialogEl && window.bootstrap && window.bootstrap.Modal;
    let pending = null;
    if (canUseDialog) {
      const dialog = window.bootstrap.Modal.getOrCreateInstance(dialogEl);
      dialogEl.querySelector("[data-confirm-ok]").addEventListener("click", function () {
        const form = pending;
        pending = null;
        dialog.hide();
        if (form) {
          form.dataset.confirmed = "1";
          form.requestSubmit ? form.requestSubmit() : form.submit();
        }
      });
      dialogEl.addEventListener("shown.bs.modal", function () {
        dialogEl.querySelector("[data-confirm-ok]").focus();
      });
    }
    document.addEventListener("submit", function (event) {
      const form = event.target;
      if (!(form instanceof HTMLFormElement) || !form.dataset.confirm) return;
      if (form.dataset.confirmed === "1") {
        delete form.dataset.confirmed;
        return;
      }
      event.preventDefault();
      if (!canUseDialog) {
        if (window.confirm(form.dataset.confirm)) {
          form.dataset.confirmed = "1";
          form.submit();
        }
        return;
      }
      pending = form;
      dialogEl.querySelector("[data-confirm-message]").textContent = form.dataset.confirm;
      window.bootstrap.Modal.getOrCreateInstance(dialogEl).show();
    });
  }

  // --- Dialogs with a field marked data-autofocus focus it when shown ------------------
  function setUpDialogFocus() {
    document.addEventListener("shown.bs.modal", function (event) {
      const target = event.target.querySelector("[data-autofocus]");
      if (target) target.focus();
    });
  }

  // --- Filters and page sizes apply as soon as they change -------------------------------
  function setUpAutosubmit() {
    document.addEventListener("change", function (event) {
      const el = event.target;
      if (el.matches && el.matches("[data-autosubmit]") && el.form) el.form.submit();
    });
  }

  // --- Repeated rows: [data-rows] holding [data-row-container] and <template data-row-template>
  function setUpRows(root) {
    const container = root.querySelector("[data-row-container]");
    const template = root.querySelector("[data-row-template]");
    if (!container || !template) return;
    // New rows get indexes after every existing one; the server orders rows by index.
    let next = 0;
    container.querySelectorAll("[name]").forEach(function (input) {
      const match = /-(\d+)-/.exec(input.name);
      if (match) next = Math.max(next, Number(match[1]) + 1);
    });
    function renumber() {
      container.querySelectorAll("[data-row]").forEach(function (row, i) {
        const cell = row.querySelector("[data-row-number]");
        if (cell) cell.textContent = String(i + 1);
      });
      root.dispatchEvent(new CustomEvent("ordo:rows-changed", { bubbles: true }));
    }
    root.querySelectorAll("[data-add-row]").forEach(function (button) {
      button.addEventListener("click", function () {
        const html = template.innerHTML.replace(/__index__/g, String(next++));
        container.insertAdjacentHTML("beforeend", html);
        const row = container.lastElementChild;
        renumber();
        const first = row.querySelector("input, select, textarea");
        if (first) first.focus();
      });
    });
    container.addEventListener("click", function (event) {
      const button = event.target.closest("[data-remove-row]");
      if (!button) return;
      const row = button.closest("[data-row]");
      const focusTarget = row.nextElementSibling || row.previousElementSibling;
      row.remove();
      renumber();
      const input = focusTarget && focusTarget.querySelector("input");
      (input || root.querySelector("[data-add-row]")).focus();
    });
    renumber();
  }

  // --- Order form: product details, customer defaults, live totals ---------------------
  function decimal(text) {
    const value = Number(String(text || "").trim());
    return Number.isFinite(value) ? value : NaN;
  }

  function formatMoney(value) {
    return value.toLocaleString(lang, { minimumFractionDigits: 2, maximumFractionDigits: 2 });
  }

  function cents(value) {
    return Math.round((value + Number.EPSILON) * 100) / 100;
  }

  function setUpOrderForm(form) {
    const products = {};
    document.querySelectorAll("#product-options option").forEach(function (option) {
      products[option.value] = option.dataset;
    });

    function recompute() {
      let untaxed = 0;
      let tax = 0;
      let complete = true;
      form.querySelectorAll("[data-row]").forEach(function (row) {
        const get = function (name) {
          return row.querySelector('[data-line="' + name + '"]');
        };
        const product = products[get("product").value.trim()];
        row.querySelector("[data-line-name]").textContent = product ? product.name : "";
        row.querySelector("[data-line-unit]").textContent = product ? product.unit : "";
        get("unit_price").placeholder = product ? product.price : "";
        get("description").placeholder = product ? product.spec : "";
        const quantity = decimal(get("quantity").value);
        const priceText = get("unit_price").value.trim() || (product ? product.price : "");
        const price = decimal(priceText);
        const discount = get("discount").value.trim() ? decimal(get("discount").value) : 0;
        const amountCell = row.querySelector("[data-line-amount]");
        if (!product || !get("quantity").value.trim() || Number.isNaN(quantity) || Number.isNaN(price) || Number.isNaN(discount)) {
          amountCell.textContent = "—";
          complete = false;
          return;
        }
        const amount = cents((quantity * price * (100 - discount)) / 100);
        amountCell.textContent = formatMoney(amount);
        untaxed += amount;
        tax += cents((amount * decimal(product.tax)) / 100);
      });
      const show = function (name, value) {
        const cell = form.querySelector('[data-total="' + name + '"]');
        if (cell) cell.textContent = formatMoney(cents(value)) + (complete ? "" : " *");
      };
      show("untaxed", untaxed);
      show("tax", tax);
      show("total", untaxed + tax);
    }

    form.addEventListener("input", recompute);
    form.addEventListener("ordo:rows-changed", recompute);

    // Choosing a customer fills the empty contact and ship-to fields from its records.
    const select = form.querySelector("[data-customer-select]");
    const details = document.getElementById("customer-details");
    if (select && details) {
      select.addEventListener("change", function () {
        const info = details.content.querySelector('[data-customer="' + CSS.escape(select.value) + '"]');
        if (!info) return;
        const fill = {
          contact_name: info.dataset.contact,
          contact_phone: info.dataset.phone,
          ship_to_contact: info.dataset.contact,
          ship_to_phone: info.dataset.phone,
          ship_to_province: info.dataset.province,
          ship_to_city: info.dataset.city,
          ship_to_address: info.dataset.address,
        };
        Object.keys(fill).forEach(function (name) {
          const input = form.elements[name];
          if (input && !input.value.trim() && fill[name]) input.value = fill[name];
        });
      });
    }
    recompute();
  }

  // --- Uploads: a progress bar while a file travels (forms marked data-upload) ----------
  // The form is sent as it would be without script; the answer (the order page, with
  // its message) replaces this page, so nothing differs but the progress shown.
  function setUpUploadProgress(form) {
    const bar = form.querySelector("[data-upload-progress]");
    if (!bar || !window.XMLHttpRequest || !window.FormData) return;
    form.addEventListener("submit", function (event) {
      if (event.defaultPrevented) return;
      event.preventDefault();
      const xhr = new XMLHttpRequest();
      const fill = bar.querySelector(".progress-bar");
      const button = form.querySelector("[type=submit]");
      if (button) button.disabled = true;
      bar.classList.remove("d-none");
      xhr.upload.addEventListener("progress", function (e) {
        if (!e.lengthComputable) return;
        const percent = Math.round((100 * e.loaded) / e.total);
        fill.style.width = percent + "%";
        bar.setAttribute("aria-valuenow", String(percent));
      });
      xhr.addEventListener("load", function () {
        // The fragment the plain redirect names (data-upload="#…"): XHR drops fragments.
        const fragment = form.dataset.upload || "";
        if (xhr.responseURL) window.history.replaceState(null, "", xhr.responseURL.split("#")[0] + fragment);
        document.open();
        document.write(xhr.responseText);
        document.close();
      });
      xhr.addEventListener("error", function () {
        // The connection failed (e.g. the file was refused as too large): send it plainly.
        form.submit();
      });
      xhr.open("POST", form.action);
      xhr.send(new FormData(form));
    });
  }

  // --- After a refused save, bring the first error into view ----------------------------
  function focusFirstError() {
    const invalid = document.querySelector("main .is-invalid");
    if (invalid) {
      invalid.focus();
      return;
    }
    const summary = document.querySelector("[data-error-summary]");
    if (summary) summary.focus();
  }

  document.addEventListener("DOMContentLoaded", function () {
    setUpConfirmations();
    setUpDialogFocus();
    setUpAutosubmit();
    document.querySelectorAll("[data-rows]").forEach(setUpRows);
    document.querySelectorAll("[data-order-form]").forEach(setUpOrderForm);
    document.querySelectorAll("form[data-upload]").forEach(setUpUploadProgress);
    focusFirstError();
  });
})();
