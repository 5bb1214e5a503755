// The console's own behaviour, loaded from the hub (the CSP allows no inline script).
// Focus moves to a swapped-in result region's heading so keyboard and screen-reader users land on it.
document.addEventListener('htmx:afterSwap', (e) => {
  const target = e.detail && e.detail.target;
  if (target && target.dataset && target.dataset.focusOnSwap === 'true') {
    const h = target.querySelector('h2, h3, [tabindex="-1"]');
    if (h) {
      if (!h.hasAttribute('tabindex')) h.setAttribute('tabindex', '-1');
      h.focus();
    }
  }
});
