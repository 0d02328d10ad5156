// The public report form: the optional map pin (Leaflet, vendored) and the send button.
(function () {
  "use strict";
  var form = document.getElementById("report-form");
  if (!form) return;
  var lat = document.getElementById("f-latitude");
  var lng = document.getElementById("f-longitude");
  var el = document.getElementById("map");
  if (el && window.L) {
    var d = el.dataset;
    L.Icon.Default.imagePath = d.icon;
    var picked = lat.value && lng.value;
    var center = picked ? [parseFloat(lat.value), parseFloat(lng.value)]
      : [parseFloat(d.lat), parseFloat(d.lng)];
    var map = L.map(el).setView(center, parseInt(d.zoom, 10) + (picked ? 3 : 0));
    L.tileLayer(d.tiles, { maxZoom: 19, attribution: d.attribution }).addTo(map);
    var marker = null;
    var clear = document.getElementById("map-clear");
    var put = function (latlng) {
      if (marker) marker.setLatLng(latlng); else marker = L.marker(latlng).addTo(map);
      lat.value = latlng.lat.toFixed(6);
      lng.value = latlng.lng.toFixed(6);
      clear.hidden = false;
    };
    if (picked) put(L.latLng(center[0], center[1]));
    map.on("click", function (e) { put(e.latlng); });
    clear.addEventListener("click", function () {
      if (marker) { map.removeLayer(marker); marker = null; }
      lat.value = ""; lng.value = "";
      clear.hidden = true;
    });
    window.reportMap = map;
  }
  form.addEventListener("submit", function () {
    var send = form.querySelector("button.send");
    // one report per press: a second press while sending would be a second report
    setTimeout(function () { send.disabled = true; }, 0);
  });
})();
