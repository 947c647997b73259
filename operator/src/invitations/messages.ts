// The one message catalogue of invitations, English and Spanish (the seed's language): the
// portal's pages and the invitation e-mail take every sentence from here.

export const languages = ["en", "es"] as const;
export type Language = (typeof languages)[number];
export const defaultLanguage: Language = "en";

const en = {
  // Every page
  siteName: "devicepass",
  pageTitle: "Set up your mail device",
  footer: "This page is not stored by your browser and sends no information to other sites.",
  // The invitation (GET)
  inviteHeading: "A password for your device",
  inviteIntroBy: "{invitedBy} invited you to set up a device for the mail address {address}.",
  inviteIntro: "You are invited to set up a device for the mail address {address}.",
  invitedByLabel: "Invited by",
  expiresLabel: "Link valid until",
  revealExplain:
    "The button creates the device's password and shows it once, with the settings for your mail program. Have the device at hand: the password cannot be shown again.",
  revealButton: "Show my password",
  // The password, once (POST)
  revealedHeading: "Your device password",
  passwordLabel: "Password",
  revealedWarning:
    "This password is shown only once. Enter it on the device now, or keep it in a password manager: it cannot be shown again.",
  copyButton: "Copy",
  copiedButton: "Copied",
  settingsHeading: "Settings for your mail program",
  incomingImap: "Incoming mail (IMAP)",
  incomingPop3: "Incoming mail (POP3)",
  outgoingSmtp: "Outgoing mail (SMTP)",
  userNameLabel: "User name",
  serverLabel: "Server",
  portLabel: "Port",
  securityLabel: "Security",
  noSettings: "Ask the person who invited you for the server names.",
  phoneHeading: "Set up a phone",
  phoneExplain:
    "Scan this code with the phone's camera within {minutes} minutes: it opens this password and these settings on the phone, with the configuration profile for iPhone and iPad.",
  profileHeading: "iPhone, iPad and Mac",
  profileLink: "Download the configuration profile (.mobileconfig)",
  profileExplain:
    "The profile sets up Mail with this password. It can be downloaded for {minutes} minutes, then only the password above remains.",
  doneHint: "When the device works, close this page.",
  // The phone's setup page (from the QR code)
  setupHeading: "Set up this phone",
  // Pages that say why nothing is shown
  usedHeading: "This link was already used",
  usedBody:
    "The password for this device was shown on {redeemedAt}. It is shown only once. If you did not see it, ask the person who invited you for a new invitation.",
  expiredHeading: "This link has expired",
  expiredBody: "The invitation expired on {expiresAt}. Ask the person who invited you for a new one.",
  revokedHeading: "This link was withdrawn",
  revokedBody:
    "The invitation was withdrawn and no longer gives a password. Ask the person who invited you for a new one.",
  unknownHeading: "This link is not valid",
  unknownBody:
    "Check that you opened the whole link from the invitation. If it still does not work, ask the person who invited you for a new one.",
  rateLimitedHeading: "Too many attempts",
  rateLimitedBody: "Too many invalid links were opened from your network. Wait a few minutes and try again.",
  setupExpiredHeading: "This setup link has expired",
  setupExpiredBody:
    "The phone setup and the configuration profile are available only for a few minutes after the password was shown. Enter the password by hand, or ask for a new invitation.",
  formExpiredHeading: "Please try again",
  formExpiredBody:
    "Your browser did not send the form back as expected (cookies may be blocked for this site). Open the link again and press the button once more; nothing was used up.",
  unavailableHeading: "Something went wrong",
  unavailableBody: "No password was created. Nothing was used up: try again in a moment.",
  notFoundHeading: "Page not found",
  notFoundBody: "There is nothing at this address.",
  methodHeading: "Not allowed",
  methodBody: "This page cannot be used that way.",
  tooLargeHeading: "Request too large",
  tooLargeBody: "The request was larger than this site accepts.",
  // Devices
  iconPhone: "Phone",
  iconTablet: "Tablet",
  iconLaptop: "Laptop",
  iconDesktop: "Desktop computer",
  iconWatch: "Watch",
  iconServer: "Server",
  iconOther: "Device",
  // The invitation e-mail
  mailSubject: "Set up {displayName} for {address}",
  mailGreeting: "Hello,",
  mailIntroBy: "{invitedBy} invited you to set up the device “{displayName}” for the mail address {address}.",
  mailIntro: "You are invited to set up the device “{displayName}” for the mail address {address}.",
  mailAction: "Open this link to get the device's password and the settings for your mail program:",
  mailButton: "Set up the device",
  mailExpiry:
    "The link is valid until {expiresAt} and works once: the password is shown a single time, to whoever opens it first. Do not forward this message.",
  mailIgnore: "If you did not expect this message, you can ignore it.",
};

export type MessageKey = keyof typeof en;

// Spanish: every key of the English catalogue, or the type check fails.
const es: Record<MessageKey, string> = {
  siteName: "devicepass",
  pageTitle: "Configurar su dispositivo de correo",
  footer: "Su navegador no guarda esta página, y esta no envía información a otros sitios.",
  inviteHeading: "Una contraseña para su dispositivo",
  inviteIntroBy:
    "{invitedBy} le ha invitado a configurar un dispositivo para la dirección de correo electrónico {address}.",
  inviteIntro:
    "Le han invitado a configurar un dispositivo para la dirección de correo electrónico {address}.",
  invitedByLabel: "Invitación de",
  expiresLabel: "Enlace válido hasta",
  revealExplain:
    "El botón crea la contraseña del dispositivo y la muestra una sola vez, con los parámetros para su programa de correo. Tenga el dispositivo a mano: la contraseña no se podrá mostrar nuevamente.",
  revealButton: "Mostrar mi contraseña",
  revealedHeading: "La contraseña de su dispositivo",
  passwordLabel: "Contraseña",
  revealedWarning:
    "Esta contraseña se muestra una sola vez. Introdúzcala ahora en el dispositivo o guárdela en un gestor de contraseñas: no se podrá mostrar nuevamente.",
  copyButton: "Copiar",
  copiedButton: "Copiada",
  settingsHeading: "Parámetros para su programa de correo",
  incomingImap: "Correo entrante (IMAP)",
  incomingPop3: "Correo entrante (POP3)",
  outgoingSmtp: "Correo saliente (SMTP)",
  userNameLabel: "Nombre de usuario",
  serverLabel: "Servidor",
  portLabel: "Puerto",
  securityLabel: "Seguridad",
  noSettings: "Pida los nombres de los servidores a la persona que le invitó.",
  phoneHeading: "Configurar un teléfono",
  phoneExplain:
    "Escanee este código con la cámara del teléfono en los próximos {minutes} minutos: abre esta contraseña y estos parámetros en el teléfono, con el perfil de configuración para iPhone y iPad.",
  profileHeading: "iPhone, iPad y Mac",
  profileLink: "Descargar el perfil de configuración (.mobileconfig)",
  profileExplain:
    "El perfil configura Mail con esta contraseña. Se puede descargar durante {minutes} minutos; después solo queda la contraseña de arriba.",
  doneHint: "Cuando el dispositivo funcione, cierre esta página.",
  setupHeading: "Configurar este teléfono",
  usedHeading: "Este enlace ya se ha utilizado",
  usedBody:
    "La contraseña de este dispositivo se mostró el {redeemedAt}. Solo se muestra una vez. Si no la vio, pida una nueva invitación a la persona que le invitó.",
  expiredHeading: "Este enlace ha caducado",
  expiredBody: "La invitación caducó el {expiresAt}. Pida una nueva a la persona que le invitó.",
  revokedHeading: "Este enlace se ha retirado",
  revokedBody:
    "La invitación se ha retirado y ya no da ninguna contraseña. Pida una nueva a la persona que le invitó.",
  unknownHeading: "Este enlace no es válido",
  unknownBody:
    "Compruebe que abrió el enlace completo de la invitación. Si sigue sin funcionar, pida uno nuevo a la persona que le invitó.",
  rateLimitedHeading: "Demasiados intentos",
  rateLimitedBody:
    "Se han abierto demasiados enlaces no válidos desde su red. Espere unos minutos y vuelva a intentarlo.",
  setupExpiredHeading: "Este enlace de configuración ha caducado",
  setupExpiredBody:
    "La configuración del teléfono y el perfil solo están disponibles unos minutos después de mostrar la contraseña. Introduzca la contraseña a mano o pida una nueva invitación.",
  formExpiredHeading: "Vuelva a intentarlo",
  formExpiredBody:
    "Su navegador no devolvió el formulario como se esperaba (quizá bloquea las cookies de este sitio). Abra de nuevo el enlace y pulse otra vez el botón; no se ha gastado nada.",
  unavailableHeading: "Algo ha fallado",
  unavailableBody:
    "No se ha creado ninguna contraseña y no se ha gastado nada: vuelva a intentarlo en un momento.",
  notFoundHeading: "Página no encontrada",
  notFoundBody: "No hay nada en esta dirección.",
  methodHeading: "No permitido",
  methodBody: "Esta página no se puede usar así.",
  tooLargeHeading: "Solicitud demasiado grande",
  tooLargeBody: "La solicitud es más grande de lo que este sitio acepta.",
  iconPhone: "Teléfono",
  iconTablet: "Tableta",
  iconLaptop: "Portátil",
  iconDesktop: "Ordenador de sobremesa",
  iconWatch: "Reloj",
  iconServer: "Servidor",
  iconOther: "Dispositivo",
  mailSubject: "Configure {displayName} para {address}",
  mailGreeting: "Hola:",
  mailIntroBy:
    "{invitedBy} le ha invitado a configurar el dispositivo «{displayName}» para la dirección de correo electrónico {address}.",
  mailIntro:
    "Le han invitado a configurar el dispositivo «{displayName}» para la dirección de correo electrónico {address}.",
  mailAction:
    "Abra este enlace para obtener la contraseña del dispositivo y los parámetros de su programa de correo:",
  mailButton: "Configurar el dispositivo",
  mailExpiry:
    "El enlace es válido hasta el {expiresAt} y funciona una vez: la contraseña se muestra una sola vez, a quien lo abra primero. No reenvíe este mensaje.",
  mailIgnore: "Si no esperaba este mensaje, puede ignorarlo.",
};

export const catalogue: Record<Language, Record<MessageKey, string>> = { en, es };

/** The placeholders `{name}` of a message. */
export function placeholders(text: string): string[] {
  return [...text.matchAll(/\{([a-zA-Z]+)\}/g)].map((m) => m[1]!).sort();
}

/** The message `key` in `language`, each `{name}` replaced by params[name] (plain text: escape for HTML). */
export function message(language: Language, key: MessageKey, params: Record<string, string> = {}): string {
  return catalogue[language][key].replace(/\{([a-zA-Z]+)\}/g, (all, name: string) => params[name] ?? all);
}

/**
 * The best catalogue language for an Accept-Language header (RFC 9110 §12.5.4: quality values,
 * language ranges matched by prefix); `fallback` when none matches.
 */
export function chooseLanguage(
  acceptLanguage: string | undefined,
  fallback: Language = defaultLanguage,
): Language {
  if (!acceptLanguage) return fallback;
  let best: { language: Language; q: number; order: number } | undefined;
  acceptLanguage
    .slice(0, 512)
    .split(",")
    .forEach((part, order) => {
      const [range = "", ...params] = part.trim().toLowerCase().split(";");
      const qParam = params.map((p) => p.trim()).find((p) => p.startsWith("q="));
      const q = qParam === undefined ? 1 : Number(qParam.slice(2));
      if (!Number.isFinite(q) || q <= 0) return;
      const primary = range.trim().split("-")[0];
      const language = languages.find((l) => l === primary);
      if (!language) return;
      if (!best || q > best.q || (q === best.q && order < best.order)) best = { language, q, order };
    });
  return best?.language ?? fallback;
}

/** A date as people of `language` write it, in UTC (the server cannot know the reader's zone). */
export function formatDate(language: Language, iso: string): string {
  const date = new Date(iso);
  const text = new Intl.DateTimeFormat(language === "es" ? "es-ES" : "en-GB", {
    dateStyle: "long",
    timeStyle: "short",
    timeZone: "UTC",
  }).format(date);
  return `${text} UTC`;
}
