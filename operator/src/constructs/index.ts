// The package's public entry point ("devicepass" in package.json exports): cdk8s constructs for
// mail domains, addresses and devices, and the operator's install manifests.
export { MailAddress, MailDevice, MailDomain } from "./mail.ts";
export type { MailAddressProps, MailDeviceProps, MailDomainProps, ObjectProps } from "./mail.ts";
export { DevicepassInstall, defaultRelease } from "../install/manifests.ts";
export type { DevicepassInstallProps } from "../install/manifests.ts";
export type { Values, ValuesInput } from "../install/values.ts";
export { valuesSchema } from "../install/values.ts";
export { apiVersion, kinds, labels, rotateAnnotation } from "../api/names.ts";
export type {
  ClientSettings,
  MailAddressSpecInput,
  MailDeviceSpecInput,
  MailDomainSpecInput,
} from "../api/schemas.ts";
