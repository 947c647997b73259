// How the install manifests get their values: concrete values (the plain install manifest, and
// cdk8s apps), or Helm template expressions (the chart's templates/), from the same cdk8s code.
import { ApiObject } from "cdk8s";
import type { IConstruct } from "constructs";
import { stringify } from "yaml";
import type { Values } from "./values.ts";

export interface Release {
  name: string;
  namespace: string;
}

/**
 * The construct code asks a Wiring for every value-dependent part of a manifest. PlainWiring
 * answers with concrete values; HelmWiring answers with markers that `renderTemplate` turns into
 * Go template expressions, so one piece of code describes both outputs. Conditions are written
 * twice (a TypeScript predicate and a Go template expression); the chart tests render both with
 * several value sets and compare.
 */
export interface Wiring {
  readonly helm: boolean;
  readonly release: Release;
  /** A chart value, picked by a property chain: `w.value((v) => v.image.pullPolicy)`. */
  value<T>(pick: (values: Values) => T): T;
  /** A value computed from the values in TypeScript, and by the Go template expression `expr`. */
  computed<T>(pick: (values: Values) => T, expr: string): T;
  /** A list item that exists only when `condition` holds (`expr` in Go templates, `$`-rooted). */
  when<T>(condition: (values: Values) => boolean, expr: string, item: () => T): T[];
  /** One list item per element of a list of strings in the values. */
  each<T>(pick: (values: Values) => readonly string[], item: (element: string) => T): T[];
  /**
   * One list item per element of a list computed from the values; in Go templates `range` ranges
   * over a list and `element` turns its variable into the element.
   */
  eachComputed<T>(
    list: (values: Values) => readonly string[],
    range: string,
    element: (variable: string) => string,
    item: (element: string) => T,
  ): T[];
  /** API objects, created under `scope` by `create`, that exist only when `condition` holds. */
  objectsWhen(
    scope: IConstruct,
    condition: (values: Values) => boolean,
    expr: string,
    create: () => void,
  ): void;
  /** One set of API objects per element of a list of strings in the values. */
  objectsEach(
    scope: IConstruct,
    pick: (values: Values) => readonly string[],
    create: (element: string) => void,
  ): void;
}

export class PlainWiring implements Wiring {
  readonly helm = false;
  readonly release: Release;
  private readonly values: Values;

  constructor(values: Values, release: Release) {
    this.values = values;
    this.release = release;
  }

  value<T>(pick: (values: Values) => T): T {
    return pick(this.values);
  }
  computed<T>(pick: (values: Values) => T): T {
    return pick(this.values);
  }
  when<T>(condition: (values: Values) => boolean, _expr: string, item: () => T): T[] {
    return condition(this.values) ? [item()] : [];
  }
  each<T>(pick: (values: Values) => readonly string[], item: (element: string) => T): T[] {
    return pick(this.values).map(item);
  }
  eachComputed<T>(
    list: (values: Values) => readonly string[],
    _range: string,
    _element: (variable: string) => string,
    item: (element: string) => T,
  ): T[] {
    return list(this.values).map(item);
  }
  objectsWhen(_scope: IConstruct, condition: (values: Values) => boolean, _expr: string, create: () => void) {
    if (condition(this.values)) create();
  }
  objectsEach(_scope: IConstruct, pick: (values: Values) => readonly string[], create: (e: string) => void) {
    for (const element of pick(this.values)) create(element);
  }
}

/** The Go template path of a property chain, found by running `pick` on a recording proxy. */
function valuesPath(pick: (values: Values) => unknown): string {
  const path: string[] = [];
  const proxy: unknown = new Proxy(
    {},
    {
      get(_target, key) {
        path.push(String(key));
        return proxy;
      },
    },
  );
  pick(proxy as Values);
  if (path.length === 0 || path.some((key) => !/^[A-Za-z_][A-Za-z0-9_]*$/.test(key)))
    throw new Error(`not a property chain of the values: ${pick.toString()}`);
  return `$.Values.${path.join(".")}`;
}

type Marker =
  | { kind: "value"; expr: string; numeric: boolean }
  | { kind: "when"; expr: string; item: unknown }
  | { kind: "each"; expr: string; variable: string; item: unknown };

type Wrap = { open: string; close: string };

// Markers are strings no manifest contains; a marker embedded in a longer string is a fragment.
const markerPattern = /\u27ea(\d+)\u27eb/g;
const wholeMarker = /^\u27ea(\d+)\u27eb$/;
const marker = (index: number) => `\u27ea${index}\u27eb`;

export class HelmWiring implements Wiring {
  readonly helm = true;
  readonly release: Release;
  private readonly markers: Marker[] = [];
  private readonly wraps = new Map<ApiObject, Wrap[]>();
  /** Default values, to know a value's type; nothing concrete reaches the chart from them. */
  private readonly defaults: Values;
  private variables = 0;

  constructor(defaults: Values) {
    this.defaults = defaults;
    this.release = {
      name: this.expression("$.Release.Name", false),
      namespace: this.expression("$.Release.Namespace", false),
    };
  }

  /** A marker for the Go template expression `expr` (rooted at `$`). */
  expression(expr: string, numeric: boolean): string {
    this.markers.push({ kind: "value", expr, numeric });
    return marker(this.markers.length - 1);
  }

  value<T>(pick: (values: Values) => T): T {
    return this.expression(valuesPath(pick), typeof pick(this.defaults) === "number") as T;
  }
  computed<T>(pick: (values: Values) => T, expr: string): T {
    return this.expression(expr, typeof pick(this.defaults) === "number") as T;
  }
  when<T>(_condition: (values: Values) => boolean, expr: string, item: () => T): T[] {
    this.markers.push({ kind: "when", expr, item: item() });
    return [marker(this.markers.length - 1) as T];
  }
  each<T>(pick: (values: Values) => readonly string[], item: (element: string) => T): T[] {
    return this.eachComputed(pick, valuesPath(pick), (variable) => variable, item);
  }
  eachComputed<T>(
    _list: (values: Values) => readonly string[],
    range: string,
    element: (variable: string) => string,
    item: (element: string) => T,
  ): T[] {
    const variable = `$e${this.variables++}`;
    const value = this.expression(element(variable), false);
    this.markers.push({ kind: "each", expr: range, variable, item: item(value) });
    return [marker(this.markers.length - 1) as T];
  }
  private created(scope: IConstruct, create: () => void): ApiObject[] {
    const before = new Set(scope.node.findAll());
    create();
    return scope.node.findAll().filter((c): c is ApiObject => !before.has(c) && c instanceof ApiObject);
  }
  private wrap(objects: ApiObject[], wrap: Wrap): void {
    for (const object of objects) this.wraps.set(object, [...(this.wraps.get(object) ?? []), wrap]);
  }
  objectsWhen(scope: IConstruct, _condition: (values: Values) => boolean, expr: string, create: () => void) {
    this.wrap(this.created(scope, create), { open: `{{- if ${expr} }}`, close: "{{- end }}" });
  }
  objectsEach(scope: IConstruct, pick: (values: Values) => readonly string[], create: (e: string) => void) {
    const variable = `$e${this.variables++}`;
    const element = this.expression(variable, false);
    const objects = this.created(scope, () => create(element));
    this.wrap(objects, { open: `{{- range ${variable} := ${valuesPath(pick)} }}`, close: "{{- end }}" });
  }

  /** A Helm template of `objects`: YAML documents with Go template expressions and blocks. */
  renderTemplate(objects: readonly ApiObject[]): string {
    const tokens = new Map<string, string>();
    const blocks = new Map<string, { open: string; item: unknown; close: string }>();
    let tokenCount = 0;
    const token = () => `__HELM_${tokenCount++}__`;

    const scalar = (text: string): unknown => {
      const whole = wholeMarker.exec(text);
      if (whole) {
        const m = this.markers[Number(whole[1])]!;
        if (m.kind === "value") {
          const t = token();
          tokens.set(t, `{{ toJson (${m.expr}) }}`);
          return t;
        }
        const t = token();
        const item = walk(m.item);
        if (m.kind === "when") blocks.set(t, { open: `{{- if ${m.expr} }}`, item, close: "{{- end }}" });
        else blocks.set(t, { open: `{{- range ${m.variable} := ${m.expr} }}`, item, close: "{{- end }}" });
        return t;
      }
      if (!text.includes("\u27ea")) {
        // Concrete text (a configuration file) must not be read as template actions by Helm.
        return text.replace(/\{\{|\}\}/g, (braces) => {
          const t = token();
          tokens.set(t, `{{ ${JSON.stringify(braces)} }}`);
          return t;
        });
      }
      // A string with fragments: one printf, quoted as JSON (which YAML reads as a double-quoted string).
      const args: string[] = [];
      const format = text.replace(/%/g, "%%").replace(markerPattern, (_all, index: string) => {
        const m = this.markers[Number(index)]!;
        if (m.kind !== "value") throw new Error("a list marker inside a string");
        args.push(m.numeric ? `(int ${m.expr})` : `(${m.expr})`);
        return "%v";
      });
      const t = token();
      tokens.set(t, `{{ printf ${JSON.stringify(format)} ${args.join(" ")} | toJson }}`);
      return t;
    };
    const walk = (node: unknown): unknown => {
      if (typeof node === "string") return scalar(node);
      if (Array.isArray(node)) return node.map(walk);
      if (node === null || typeof node !== "object") return node;
      return Object.fromEntries(
        Object.entries(node).map(([k, v]) => {
          if (k.includes("\u27ea")) throw new Error(`a marker in the key ${k}`);
          return [k, walk(v)];
        }),
      );
    };

    const documents = objects.map((object) => {
      let text = "---\n" + stringify(walk(object.toJson()), { lineWidth: 0 });
      // List item blocks: `- __HELM_n__` becomes the item between its opening and closing lines.
      // Blocks may nest (an item holding a block), so expand until none is left.
      for (let changed = true; changed;) {
        changed = false;
        text = text.replace(/^( *)- (__HELM_\d+__)\n/gm, (all, indent: string, t: string) => {
          const block = blocks.get(t);
          if (!block) return all;
          changed = true;
          const lines = stringify([block.item], { lineWidth: 0 }).trimEnd().split("\n");
          return [block.open, ...lines, block.close].map((line) => indent + line).join("\n") + "\n";
        });
      }
      for (const wrap of [...(this.wraps.get(object) ?? [])].reverse())
        text = `${wrap.open}\n${text}${wrap.close}\n`;
      return text;
    });
    return documents.join("").replace(/__HELM_\d+__/g, (t) => tokens.get(t) ?? t);
  }
}
