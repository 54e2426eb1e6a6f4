// 新建评估: rows added and removed in place, the ID number's check digit, birth date and sex, and the
// locality picked by name. Without this script the form still works: the add/remove buttons post the
// form and the server re-renders it. The server's validator stays the authority on every value.
"use strict";
(function () {
  const form = document.getElementById("evaluate-form");
  if (!form) return;

  // -- rows ---------------------------------------------------------------------------------------
  function containerFor(path) {
    return form.querySelector('[data-rows="' + CSS.escape(path) + '"]');
  }
  function addRow(path) {
    const box = containerFor(path);
    if (!box) return false;
    const member = path.match(/^members\[(\d+)\]\.incomes$/);
    const kind = member ? "incomes" : path;
    const tpl = document.getElementById("tpl-" + kind);
    if (!tpl) return false;
    const next = Number(box.dataset.next || box.querySelectorAll(":scope > [data-row]").length);
    box.dataset.next = String(next + 1);
    let html = tpl.innerHTML;
    if (member) {
      html = html.replaceAll("__M__", member[1]).replaceAll("__I__", String(next));
    } else {
      html = html.replaceAll("__M__", String(next)).replaceAll("__I__", String(next));
    }
    const holder = document.createElement("div");
    holder.innerHTML = html.trim();
    const row = holder.firstElementChild;
    if (kind === "members") {
      const here = form.querySelector("[data-locality]").value.trim();
      row.querySelector("[data-hukou]").value = here;
      numberMembers();
    }
    box.appendChild(row);
    if (kind === "members") numberMembers();
    const first = row.querySelector("select, input");
    if (first) first.focus();
    return true;
  }
  function numberMembers() {
    form.querySelectorAll("#members > fieldset.member").forEach(function (fs, i) {
      fs.querySelector(":scope > legend").textContent = "成员 " + (i + 1);
    });
  }
  form.addEventListener("click", function (ev) {
    const add = ev.target.closest("[data-add]");
    if (add && addRow(add.dataset.add)) {
      ev.preventDefault();
      return;
    }
    const remove = ev.target.closest("[data-remove]");
    if (remove) {
      const row = remove.closest("[data-row]");
      if (row) {
        ev.preventDefault();
        row.remove();
        numberMembers();
      }
    }
  });

  // -- resident ID number (GB 11643): check digit, birth date, sex -----------------------------------
  const WEIGHTS = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2];
  const CHECK = "10X98765432";
  function checkDigit(first17) {
    let sum = 0;
    for (let i = 0; i < 17; i++) sum += Number(first17[i]) * WEIGHTS[i];
    return CHECK[sum % 11];
  }
  function assistId(input) {
    const row = input.closest("fieldset.member");
    const hint = input.parentElement.querySelector(".id-hint");
    const v = input.value.replace(/\s+/g, "").toUpperCase();
    hint.textContent = "";
    hint.classList.remove("bad");
    if (v.length === 0) return;
    if (!/^\d{17}[\dX]$/.test(v)) {
      if (v.length >= 18) {
        hint.textContent = "身份证号码应为18位：前17位数字，最后一位数字或X";
        hint.classList.add("bad");
      }
      return;
    }
    if (checkDigit(v.slice(0, 17)) !== v[17]) {
      hint.textContent = "身份证号码校验位错误，请核对";
      hint.classList.add("bad");
      return;
    }
    const birth = v.slice(6, 10) + "-" + v.slice(10, 12) + "-" + v.slice(12, 14);
    const d = new Date(birth + "T00:00:00Z");
    if (isNaN(d) || d.toISOString().slice(0, 10) !== birth) {
      hint.textContent = "身份证号码中的出生日期无效";
      hint.classList.add("bad");
      return;
    }
    row.querySelector('input[name$=".birth_date"]').value = birth;
    row.querySelector('select[name$=".sex"]').value = Number(v[16]) % 2 === 1 ? "male" : "female";
    hint.textContent = "校验通过，已填入出生日期和性别";
  }
  form.addEventListener("input", function (ev) {
    if (ev.target.matches("[data-idnumber]")) assistId(ev.target);
  });

  // -- locality by name: province -> city -> county, or search -------------------------------------
  const code = form.querySelector("[data-locality]");
  const nameBox = document.getElementById("locality-name");
  const picker = document.getElementById("locality-picker");
  const [prov, pref, county] = ["pick-province", "pick-prefecture", "pick-county"].map(function (id) {
    return document.getElementById(id);
  });
  const search = document.getElementById("locality-search");
  const options = document.getElementById("locality-options");
  let byCode = new Map();
  let all = [];

  function fill(select, items) {
    select.length = 1;
    items.forEach(function (d) {
      select.add(new Option(d.name, d.code));
    });
  }
  function children(prefix, level) {
    return all.filter(function (d) {
      return d.level === level && d.code.startsWith(prefix);
    });
  }
  function setCode(value) {
    const old = code.value.trim();
    code.value = value;
    const d = byCode.get(value);
    nameBox.textContent = d ? d.full_name : "";
    // members registered where the household applies move with it
    form.querySelectorAll("[data-hukou]").forEach(function (h) {
      if (h.value.trim() === old || h.value.trim() === "") h.value = value;
    });
  }
  function showPath(value) {
    const d = byCode.get(value);
    if (!d) return;
    prov.value = value.slice(0, 2) + "0000";
    fill(pref, children(value.slice(0, 2), "prefecture"));
    pref.value = value.slice(0, 4) + "00";
    fill(county, children(value.slice(0, 4), "county"));
    county.value = d.level === "county" ? value : "";
  }
  prov.addEventListener("change", function () {
    fill(pref, children(prov.value.slice(0, 2), "prefecture"));
    fill(county, []);
    if (prov.value) setCode(prov.value);
  });
  pref.addEventListener("change", function () {
    fill(county, children(pref.value.slice(0, 4), "county"));
    if (pref.value) setCode(pref.value);
  });
  county.addEventListener("change", function () {
    if (county.value) setCode(county.value);
  });
  search.addEventListener("change", function () {
    const m = search.value.match(/（(\d{6})）$/);
    if (m && byCode.has(m[1])) {
      setCode(m[1]);
      showPath(m[1]);
    }
  });
  code.addEventListener("change", function () {
    const v = code.value.trim();
    const d = byCode.get(v);
    nameBox.textContent = d ? d.full_name : "";
    showPath(v);
  });
  fetch("/evaluate/localities.json", { credentials: "same-origin" })
    .then(function (r) {
      return r.ok ? r.json() : [];
    })
    .then(function (items) {
      all = items;
      byCode = new Map(items.map(function (d) { return [d.code, d]; }));
      fill(prov, children("", "province"));
      items.forEach(function (d) {
        if (d.level === "county" || d.level === "prefecture") {
          const o = document.createElement("option");
          o.value = d.full_name + "（" + d.code + "）";
          options.appendChild(o);
        }
      });
      picker.hidden = false;
      if (code.value.trim()) showPath(code.value.trim());
    });

  const summary = document.getElementById("error-summary");
  if (summary) summary.focus();
})();
