"""The ``user.js`` of a routed Firefox: the proxy that routes it, and quiet prefs (no background traffic).

Firefox has no host-resolver or key-pin flag. A profile of our own points its HTTP and HTTPS
proxy at a private scoped proxy (:mod:`mockserver.serving.proxy`), which hands
``CONNECT telemetry.refine.dev:443`` to the inspector and tunnels every other host untouched;
loopback (the app's own dev server) is never proxied. The quiet prefs switch off what Firefox
fetches by itself (first-run pages, its own telemetry, updates, captive-portal and connectivity
checks, safe browsing, remote settings and studies, the new-tab page's feeds, push), so that the
proxy's list of other hosts is the page's own. Checked on Firefox 153 ESR: with these prefs and
:data:`FIREFOX_ENV` nothing but the page's requests reaches the proxy, and nothing leaves directly.
"""

from __future__ import annotations

import json
from collections.abc import Mapping

PrefValue = bool | int | str

# Loopback stays direct: Firefox never proxies it unless allow_hijacking_localhost is set; the
# list says so for the other spellings too.
NO_PROXY_FOR = "localhost, 127.0.0.1, [::1], .localhost"

# Release builds ignore services.settings.server unless this is in the environment; without it,
# remote settings (and the studies and experiments fed by it) go to firefox.settings.services.mozilla.com.
FIREFOX_ENV = {"MOZ_REMOTE_SETTINGS_DEVTOOLS": "1"}

QUIET_FIREFOX_PREFS: dict[str, PrefValue] = {
    # First run, welcome and restore pages; the default-browser question.
    "browser.startup.homepage_override.mstone": "ignore",
    "browser.startup.homepage": "about:blank",
    "browser.startup.page": 0,
    "startup.homepage_welcome_url": "about:blank",
    "startup.homepage_welcome_url.additional": "",
    "startup.homepage_override_url": "",
    "browser.aboutwelcome.enabled": False,
    "trailhead.firstrun.didSeeAboutWelcome": True,
    "termsofuse.bypassNotification": True,
    "browser.shell.checkDefaultBrowser": False,
    "browser.sessionstore.resume_from_crash": False,
    "toolkit.startup.max_resumed_crashes": -1,
    "browser.warnOnQuit": False,
    "browser.tabs.warnOnClose": False,
    "browser.uitour.enabled": False,
    "browser.backup.enabled": False,
    # Firefox's own telemetry and data reporting, crash reports.
    "datareporting.policy.dataSubmissionEnabled": False,
    "datareporting.policy.dataSubmissionPolicyBypassNotification": True,
    "datareporting.healthreport.uploadEnabled": False,
    "datareporting.usage.uploadEnabled": False,
    "toolkit.telemetry.enabled": False,
    "toolkit.telemetry.unified": False,
    "toolkit.telemetry.archive.enabled": False,
    "toolkit.telemetry.server": "",
    "toolkit.telemetry.newProfilePing.enabled": False,
    "toolkit.telemetry.shutdownPingSender.enabled": False,
    "toolkit.telemetry.updatePing.enabled": False,
    "toolkit.telemetry.bhrPing.enabled": False,
    "toolkit.telemetry.firstShutdownPing.enabled": False,
    "toolkit.telemetry.coverage.opt-out": True,
    "toolkit.coverage.opt-out": True,
    "toolkit.coverage.endpoint.base": "",
    "browser.newtabpage.activity-stream.feeds.telemetry": False,
    "browser.newtabpage.activity-stream.telemetry": False,
    "browser.crashReports.unsubmittedCheck.autoSubmit2": False,
    "breakpad.reportURL": "",
    # Updates of Firefox, its add-ons, plugins and search engines.
    "app.update.auto": False,
    "app.update.enabled": False,
    "app.update.disabledForTesting": True,
    "app.update.checkInstallTime": False,
    "app.update.staging.enabled": False,
    "app.update.service.enabled": False,
    "app.update.background.scheduling.enabled": False,
    "app.update.url": "",
    "extensions.update.enabled": False,
    "extensions.update.autoUpdateDefault": False,
    "extensions.getAddons.cache.enabled": False,
    "extensions.systemAddon.update.enabled": False,
    "extensions.systemAddon.update.url": "",
    "extensions.blocklist.enabled": False,
    "extensions.htmlaboutaddons.recommendations.enabled": False,
    "extensions.getAddons.discovery.api_url": "",
    "browser.discovery.enabled": False,
    "media.gmp-manager.updateEnabled": False,
    "media.gmp-manager.url": "",
    "media.gmp-gmpopenh264.enabled": False,
    "media.gmp-widevinecdm.enabled": False,
    "browser.search.update": False,
    "browser.region.update.enabled": False,
    "browser.region.network.url": "",
    "geo.provider.network.url": "",
    # Captive-portal and connectivity checks.
    "network.captive-portal-service.enabled": False,
    "network.connectivity-service.enabled": False,
    "captivedetect.canonicalURL": "",
    # Safe browsing and tracking-protection lists, certificate-revocation and priming fetches.
    "browser.safebrowsing.malware.enabled": False,
    "browser.safebrowsing.phishing.enabled": False,
    "browser.safebrowsing.downloads.enabled": False,
    "browser.safebrowsing.downloads.remote.enabled": False,
    "browser.safebrowsing.blockedURIs.enabled": False,
    "browser.safebrowsing.provider.mozilla.updateURL": "",
    "browser.safebrowsing.provider.mozilla.gethashURL": "",
    "browser.safebrowsing.provider.google.updateURL": "",
    "browser.safebrowsing.provider.google.gethashURL": "",
    "browser.safebrowsing.provider.google4.updateURL": "",
    "browser.safebrowsing.provider.google4.gethashURL": "",
    "privacy.trackingprotection.enabled": False,
    "security.OCSP.enabled": 0,
    "security.remote_settings.crlite_filters.enabled": False,
    "security.remote_settings.intermediates.enabled": False,
    "security.certerrors.mitm.priming.enabled": False,
    # Remote settings, Normandy, Shield studies and Nimbus experiments (see FIREFOX_ENV).
    "services.settings.server": "data:,#remote-settings-dummy/v1",
    "services.settings.loglevel": "off",
    "app.shield.optoutstudies.enabled": False,
    "app.normandy.enabled": False,
    "app.normandy.api_url": "",
    "messaging-system.rsexperimentloader.enabled": False,
    "nimbus.rollouts.enabled": False,
    # Pocket and the new-tab page's activity stream, sponsored tiles, the address bar's suggestions.
    "extensions.pocket.enabled": False,
    "browser.newtabpage.enabled": False,
    "browser.newtabpage.activity-stream.feeds.section.topstories": False,
    "browser.newtabpage.activity-stream.feeds.topsites": False,
    "browser.newtabpage.activity-stream.feeds.system.topstories": False,
    "browser.newtabpage.activity-stream.showSponsored": False,
    "browser.newtabpage.activity-stream.showSponsoredTopSites": False,
    "browser.topsites.contile.enabled": False,
    "browser.urlbar.merino.endpointURL": "",
    "browser.urlbar.suggest.searches": False,
    "browser.pagethumbnails.capturing_disabled": True,
    # Push, accounts, translations and local models.
    "dom.push.enabled": False,
    "dom.push.connection.enabled": False,
    "dom.push.serverURL": "",
    "identity.fxaccounts.enabled": False,
    "browser.translations.enable": False,
    "browser.ml.enable": False,
    "network.sntp.pools": "",
    # Nothing guessed ahead (prefetch, speculative connections) and nothing around the proxy:
    # no DNS over HTTPS, no HTTP/3 (UDP), WebRTC only through the proxy.
    "network.dns.disablePrefetch": True,
    "network.prefetch-next": False,
    "network.predictor.enabled": False,
    "network.http.speculative-parallel-limit": 0,
    "browser.urlbar.speculativeConnect.enabled": False,
    "browser.places.speculativeConnect.enabled": False,
    "network.trr.mode": 5,
    "network.http.http3.enable": False,
    "media.peerconnection.ice.proxy_only": True,
}


def proxy_prefs(proxy_port: int, host: str = "127.0.0.1") -> dict[str, PrefValue]:
    """Prefs that send every http(s) and WebSocket request but loopback's to the proxy at ``host:proxy_port``."""
    return {
        "network.proxy.type": 1,  # manual
        "network.proxy.http": host,
        "network.proxy.http_port": proxy_port,
        "network.proxy.ssl": host,
        "network.proxy.ssl_port": proxy_port,
        "network.proxy.share_proxy_settings": False,
        "network.proxy.no_proxies_on": NO_PROXY_FOR,
        "network.proxy.allow_hijacking_localhost": False,
    }


def user_js(prefs: Mapping[str, PrefValue]) -> str:
    """``prefs`` as the lines of a ``user.js`` (``user_pref("name", value);``), in order."""
    return "".join(f"user_pref({json.dumps(name)}, {json.dumps(value)});\n" for name, value in prefs.items())
