package dev.chorus.flink;

import org.apache.flink.table.functions.ScalarFunction;

/** {@code CHORUS_IS_JSON_OBJECT(payload)}: {@code payload IS JSON OBJECT}, parsed once per record. */
public final class IsJsonObject extends ScalarFunction {
    public boolean eval(String payload) {
        return payload != null && JsonFields.of(payload).isObject();
    }
}
