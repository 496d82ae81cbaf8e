// The public surface of the libraries a user references, as sorted text: one line per public type and per public
// member it declares. The listing is compared with the checked-in baseline (tests/Waal.Facade.Tests/PublicApi/),
// so that a change to what users depend on is a decision made in review, not an accident.
using System.Reflection;
using System.Runtime.CompilerServices;
using System.Text;

static class PublicApi
{
    /// <summary>The assemblies whose public surface is recorded (the facade and the F# libraries under it).</summary>
    public static readonly string[] Assemblies =
        { "Waal", "Waal.Core", "Waal.Data", "Waal.Learning", "Waal.Strategies", "Waal.Experiments" };

    /// <summary>Where the baselines are, in the repository.</summary>
    public static string BaselineFolder(string repoRoot) =>
        Path.Combine(repoRoot, "tests", "Waal.Facade.Tests", "PublicApi");

    // What every type has and says nothing about its API.
    static readonly HashSet<string> Inherited = new() { "Equals", "GetHashCode", "ToString", "CompareTo", "GetType" };

    /// <summary>The sorted listing of an assembly's public surface.</summary>
    public static string Listing(Assembly assembly)
    {
        var lines = new List<string>();
        foreach (var type in assembly.GetExportedTypes())
        {
            if (type.IsDefined(typeof(CompilerGeneratedAttribute), false)) continue;
            var name = Name(type);
            lines.Add($"{Kind(type)} {name}{Base(type)}");
            const BindingFlags declared = BindingFlags.Public | BindingFlags.Instance | BindingFlags.Static | BindingFlags.DeclaredOnly;
            foreach (var m in type.GetMembers(declared))
            {
                if (m.IsDefined(typeof(CompilerGeneratedAttribute), false) || Inherited.Contains(m.Name) || m.Name.Contains('<')) continue;
                var line = m switch
                {
                    ConstructorInfo c => $"new({Parameters(c.GetParameters())})",
                    MethodInfo mi when mi.IsSpecialName && (mi.Name.StartsWith("get_") || mi.Name.StartsWith("set_") || mi.Name.StartsWith("add_") || mi.Name.StartsWith("remove_")) => null,
                    MethodInfo mi => $"{(mi.IsStatic ? "static " : "")}{mi.Name}{Generics(mi)}({Parameters(mi.GetParameters())}) : {Name(mi.ReturnType)}",
                    PropertyInfo p => $"{(p.GetMethod?.IsStatic == true ? "static " : "")}property {p.Name} : {Name(p.PropertyType)}{(p.SetMethod is { IsPublic: true } ? " { get; set; }" : "")}",
                    FieldInfo f => $"{(f.IsStatic ? "static " : "")}field {f.Name} : {Name(f.FieldType)}",
                    EventInfo e => $"event {e.Name} : {Name(e.EventHandlerType!)}",
                    Type => null,
                    _ => $"{m.MemberType} {m.Name}",
                };
                if (line is not null) lines.Add($"{name}: {line}");
            }
        }
        lines.Sort(StringComparer.Ordinal);
        return string.Join("\n", lines) + "\n";
    }

    static string Kind(Type t) =>
        t.IsEnum ? "enum" :
        t.IsInterface ? "interface" :
        t.IsValueType ? "struct" :
        typeof(Delegate).IsAssignableFrom(t) ? "delegate" :
        t.IsAbstract && t.IsSealed ? "static class" :
        t.IsAbstract ? "abstract class" :
        t.IsSealed ? "sealed class" : "class";

    static string Base(Type t) =>
        t.BaseType is { } b && b != typeof(object) && b != typeof(ValueType) && b != typeof(Enum) && !typeof(Delegate).IsAssignableFrom(t)
            ? $" : {Name(b)}"
            : "";

    static string Generics(MethodInfo m) =>
        m.IsGenericMethodDefinition ? "<" + string.Join(", ", m.GetGenericArguments().Select(Name)) + ">" : "";

    static string Parameters(ParameterInfo[] ps) =>
        string.Join(", ", ps.Select(p => $"{Name(p.ParameterType)} {p.Name}{(p.HasDefaultValue ? " = " + (p.DefaultValue ?? "null") : "")}"));

    /// <summary>A type as C# would write it, namespaces included (nested types with '.').</summary>
    static string Name(Type t)
    {
        if (t.IsGenericParameter) return t.Name;
        if (t.IsByRef) return "ref " + Name(t.GetElementType()!);
        if (t.IsArray) return Name(t.GetElementType()!) + "[" + new string(',', t.GetArrayRank() - 1) + "]";
        if (t.IsPointer) return Name(t.GetElementType()!) + "*";
        var full = new StringBuilder();
        if (t.IsNested) full.Append(Name(t.DeclaringType!)).Append('.');
        else if (!string.IsNullOrEmpty(t.Namespace)) full.Append(t.Namespace).Append('.');
        var n = t.Name;
        var tick = n.IndexOf('`');
        full.Append(tick < 0 ? n : n[..tick]);
        // Only the type's own generic arguments (a nested type repeats its parent's).
        var own = t.GetGenericArguments().Skip(t.IsNested ? t.DeclaringType!.GetGenericArguments().Length : 0).ToArray();
        if (own.Length > 0) full.Append('<').Append(string.Join(", ", own.Select(Name))).Append('>');
        return full.ToString();
    }
}
