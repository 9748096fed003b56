"""graphql-core's executor with a short way through plain fields.

For every field graphql-core builds a resolve-info object, calls strawberry's resolver wrapper, checks the
result for awaitables and completes it through a chain of calls (non-null, list, leaf or object): about 4 µs a
field and more for an object, most of a 20-task page's cost. Most fields are plain: an attribute of the object
(`title`, `startsAt`, a connection's `edges`, an edge's `node`) or a Relay `id`. Those are read here directly;
leaves are serialized with their own scalar and enum serializers, objects and lists of objects are completed
by executing their sub-selection as graphql-core does. Anything else (abstract types, @defer or @stream, a null
where none is allowed, a value of the wrong type or that does not serialize) takes graphql-core's own path
before any of its sub-fields ran, so errors, their paths and null propagation are exactly graphql-core's.

Sync resolvers without arguments or extensions (a task's `organization`, a sign-up's `task`) are called
directly, as strawberry calls them (the source as `self`, an Info), and completed by graphql-core; strawberry's
layers for arguments, extensions and exception handlers have nothing to do for them.
tests/test_lean_execution.py compares both executors, on failing fields and on the client operations.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, NamedTuple

from graphql import (
    GraphQLField,
    GraphQLLeafType,
    GraphQLList,
    GraphQLNonNull,
    GraphQLObjectType,
    GraphQLOutputType,
    GraphQLSchema,
)
from graphql.execution.collect_fields import FieldDetailsList, GroupedFieldSet
from graphql.execution.executor import to_nodes
from graphql.pyutils import Path, Undefined, gather_with_cancel
from strawberry.relay import GlobalID, Node
from strawberry.schema.schema import StrawberryGraphQLCoreExecutionContext
from strawberry.schema.schema_converter import GraphQLCoreConverter
from strawberry.types import Info
from strawberry.types.field import StrawberryField


class Plain(NamedTuple):
    """How to read one plain field: an attribute (or the Relay id), then serialize a leaf or complete objects."""

    attribute: str | None  # None: the Relay Node id
    return_type: GraphQLOutputType
    non_null: bool
    is_list: bool
    item_type: GraphQLOutputType | None  # a list's item type, as declared (maybe non-null)
    items_non_null: bool
    serialize: Callable[[Any], Any] | None  # leaves
    object_type: GraphQLObjectType | None  # objects


class Direct(NamedTuple):
    """A plain sync resolver (no arguments, no extensions): called without strawberry's wrapper layers."""

    field: GraphQLField
    definition: StrawberryField
    call: Callable[..., Any]
    pass_self: bool
    source_names: tuple[str, ...]  # `root` / `parent` parameters
    info_name: str | None


_PLANS: dict[GraphQLObjectType, dict[str, Plain | Direct | None]] = {}
_NODE_ID = Node.__dict__["_id"].__func__
_DEFAULT_ID = Node.__dict__["resolve_id"].__func__, Node.__dict__["resolve_typename"].__func__
_ID_ATTRIBUTE: dict[type, str | None] = {}  # per Node class: its NodeID attribute, None if it resolves ids itself


def _direct(field: GraphQLField, definition: StrawberryField) -> Direct | None:
    resolver = definition.base_resolver
    if (resolver is None or definition.is_async or definition.extensions or definition.arguments
            or not callable(resolver.wrapped_func)
            or getattr(resolver.wrapped_func, "__func__", None) is _NODE_ID):
        return None
    sources = tuple(p.name for p in (resolver.root_parameter, resolver.parent_parameter) if p is not None)
    return Direct(field, definition, resolver.wrapped_func, resolver.self_parameter is not None, sources,
                  resolver.info_parameter.name if resolver.info_parameter is not None else None)


def _plan(field: GraphQLField, handlers: bool) -> Plain | Direct | None:
    definition = (field.extensions or {}).get(GraphQLCoreConverter.DEFINITION_BACKREF)
    if not isinstance(definition, StrawberryField) or field.args:
        return None
    if not handlers and (direct := _direct(field, definition)) is not None:
        return direct
    return_type = field.type
    non_null = isinstance(return_type, GraphQLNonNull)
    inner = return_type.of_type if isinstance(return_type, GraphQLNonNull) else return_type
    item_type: GraphQLOutputType | None = None
    items_non_null = False
    if isinstance(inner, GraphQLList):
        item_type = inner.of_type
        items_non_null = isinstance(item_type, GraphQLNonNull)
        inner = item_type.of_type if isinstance(item_type, GraphQLNonNull) else item_type
    if not isinstance(inner, GraphQLLeafType | GraphQLObjectType):
        return None  # abstract types and nested lists: graphql-core's path
    is_list = item_type is not None
    leaf = isinstance(inner, GraphQLLeafType)
    if definition.is_basic_field and getattr(field.resolve, "_is_default", False):
        attribute: str | None = definition.python_name
    elif (definition.base_resolver is not None and leaf and not is_list
          and getattr(definition.base_resolver.wrapped_func, "__func__", None) is _NODE_ID):
        attribute = None
    else:
        return None
    return Plain(attribute, return_type, non_null, is_list, item_type, items_non_null,
                 inner.coerce_output_value if isinstance(inner, GraphQLLeafType) else None,
                 inner if isinstance(inner, GraphQLObjectType) else None)


def plans_for(schema: GraphQLSchema, parent_type: GraphQLObjectType) -> dict[str, Plain | Direct | None]:
    plans = _PLANS.get(parent_type)
    if plans is None:
        # strawberry's exception handlers wrap resolvers: with any, resolvers take strawberry's own path
        handlers = bool(getattr(getattr(schema, "_strawberry_schema", None), "exception_handlers", ()))
        plans = _PLANS[parent_type] = {name: _plan(field, handlers) for name, field in parent_type.fields.items()}
    return plans


def _node_id(source: Any, type_name: str) -> Any:
    """What Node.id resolves to, for nodes that keep strawberry's resolve_id and resolve_typename."""
    cls = type(source)
    try:
        attribute = _ID_ATTRIBUTE[cls]
    except KeyError:
        default = isinstance(source, Node) and (cls.resolve_id.__func__, cls.resolve_typename.__func__) == _DEFAULT_ID
        attribute = _ID_ATTRIBUTE[cls] = cls.resolve_id_attr() if default else None
    if attribute is None:
        return Undefined  # a node that computes its own id: graphql-core's path
    return GlobalID(type_name=type_name, node_id=str(getattr(source, attribute)))


def read_leaf(plan: Plain, value: Any) -> Any:
    """The serialized value, or Undefined when graphql-core's own path must decide (errors, nulls)."""
    serialize = plan.serialize
    assert serialize is not None
    try:
        if plan.is_list:
            if not isinstance(value, list | tuple):
                # graphql-core refuses strings and mappings here, and reading a one-shot iterable (a generator)
                # would leave graphql-core's path an exhausted one: anything but a list or tuple goes its way
                return Undefined
            out: list[Any] = []
            for item in value:
                if item is None:
                    if plan.items_non_null:
                        return Undefined
                    out.append(None)
                    continue
                serialized = serialize(item)
                if serialized is None or serialized is Undefined:
                    return Undefined
                out.append(serialized)
            return out
        serialized = serialize(value)
        return Undefined if serialized is None else serialized
    except Exception:
        return Undefined


def _is_type(object_type: GraphQLObjectType, value: Any) -> bool:
    is_type_of = object_type.is_type_of
    if is_type_of is None:
        return True
    try:
        # strawberry's check is an isinstance and ignores the info; anything else goes graphql-core's way
        return is_type_of(value, None) is True  # type: ignore[arg-type]
    except Exception:
        return False


class LeanExecutionContext(StrawberryGraphQLCoreExecutionContext):
    def execute_fields(
        self,
        parent_type: GraphQLObjectType,
        source_value: Any,
        path: Path | None,
        grouped_field_set: GroupedFieldSet,
        position_context: Any,
    ) -> Any:
        """graphql-core's execute_fields, with plain fields read at once (see the module's docstring)."""
        if position_context is not None or (self.middleware_manager is not None
                                            and self.middleware_manager.middlewares):
            return super().execute_fields(parent_type, source_value, path, grouped_field_set, position_context)
        plans = plans_for(self.schema, parent_type)
        type_name = parent_type.name
        results: dict[str, Any] = {}
        is_awaitable = self.is_awaitable
        awaitable_fields: list[str] = []
        try:
            for response_name, field_details_list in grouped_field_set.items():
                plan = plans.get(field_details_list[0].node.name.value)
                result: Any
                if plan is None:
                    result = Undefined
                elif isinstance(plan, Direct):
                    result = self.direct_field(plan, parent_type, source_value, path, response_name,
                                               field_details_list)
                else:
                    result = self.plain_field(plan, source_value, type_name, path, response_name, field_details_list)
                if result is Undefined:
                    result = self.execute_field(parent_type, source_value, field_details_list,
                                                Path(path, response_name, type_name), position_context)
                if result is not Undefined:
                    results[response_name] = result
                    if is_awaitable(result):
                        awaitable_fields.append(response_name)
        except Exception:
            if awaitable_fields:
                self.settle_in_background([results[field] for field in awaitable_fields])
            raise

        if not awaitable_fields:
            return results

        async def get_results() -> dict[str, Any]:
            if len(awaitable_fields) == 1:
                field = awaitable_fields[0]
                results[field] = await results[field]
            else:
                awaited = await gather_with_cancel(*(results[field] for field in awaitable_fields))
                results.update(zip(awaitable_fields, awaited, strict=True))
            return results

        return get_results()

    def plain_field(self, plan: Plain, source: Any, type_name: str, path: Path | None, response_name: str,
                    field_details_list: FieldDetailsList) -> Any:
        """The completed field, or Undefined to let graphql-core's execute_field do it (nothing ran yet)."""
        try:
            value = getattr(source, plan.attribute) if plan.attribute is not None else _node_id(source, type_name)
        except Exception:
            return Undefined
        if value is None:
            return Undefined if plan.non_null else None
        if value is Undefined:
            return Undefined
        if plan.object_type is None:
            return read_leaf(plan, value)
        if any(details.node.directives for details in field_details_list):
            return Undefined
        object_type = plan.object_type
        is_awaitable = self.is_awaitable
        grouped_field_set, new_defer_usages, _ = self.collect_subfields(object_type, field_details_list)
        if new_defer_usages:
            return Undefined
        field_path = Path(path, response_name, type_name)
        if not plan.is_list:
            # (an awaitable is graphql-core's to await: a type without is_type_of would take it for the object)
            if is_awaitable(value) or not _is_type(object_type, value):
                return Undefined
            try:
                completed = self.execute_fields(object_type, value, field_path, grouped_field_set, None)
            except Exception as error:
                self.handle_field_error(error, plan.return_type, field_details_list, field_path)
                return None
            if self.is_awaitable(completed):
                return self._await_completed(completed, plan.return_type, field_details_list, field_path)
            return completed
        if not isinstance(value, list | tuple) or not all(
            not is_awaitable(item) and _is_type(object_type, item) if item is not None else not plan.items_non_null
            for item in value
        ):
            return Undefined
        try:
            return self._complete_objects(value, object_type, grouped_field_set, plan, field_details_list, field_path)
        except Exception as error:
            self.handle_field_error(error, plan.return_type, field_details_list, field_path)
            return None

    def direct_field(self, plan: Direct, parent_type: GraphQLObjectType, source: Any, path: Path | None,
                     response_name: str, field_details_list: FieldDetailsList) -> Any:
        """graphql-core's execute_field for a plain sync resolver, called as strawberry would call it (source as
        self, root or parent; strawberry's Info) but without its wrapper layers (arguments, extensions)."""
        if any(details.node.directives for details in field_details_list):
            return Undefined
        field_path = Path(path, response_name, parent_type.name)
        return_type = plan.field.type
        info = self.build_resolve_info(plan.field, to_nodes(field_details_list), parent_type, field_path)
        try:
            kwargs = dict.fromkeys(plan.source_names, source)
            if plan.info_name is not None:
                kwargs[plan.info_name] = Info(_raw_info=info, _field=plan.definition)
            result = plan.call(source, **kwargs) if plan.pass_self else plan.call(**kwargs)
            if self.is_awaitable(result):
                return self.complete_awaitable_value(return_type, field_details_list, info, field_path, result, None)
            completed = self.complete_value(return_type, field_details_list, info, field_path, result, None)
            if self.is_awaitable(completed):
                return self._await_completed(completed, return_type, field_details_list, field_path)
            return completed
        except Exception as error:
            self.handle_field_error(error, return_type, field_details_list, field_path)
            return None

    def _complete_objects(self, items: list[Any] | tuple[Any, ...], object_type: GraphQLObjectType,
                          grouped_field_set: GroupedFieldSet, plan: Plain, field_details_list: FieldDetailsList,
                          field_path: Path) -> Any:
        """graphql-core's complete_iterable_value for a list of objects already checked (not None, right type)."""
        item_type = plan.item_type
        assert item_type is not None
        is_awaitable = self.is_awaitable
        completed_results: list[Any] = []
        awaitable_indices: list[int] = []
        try:
            for index, item in enumerate(items):
                if item is None:
                    completed_results.append(None)
                    continue
                item_path = Path(field_path, index, None)
                try:
                    completed = self.execute_fields(object_type, item, item_path, grouped_field_set, None)
                except Exception as error:
                    self.handle_field_error(error, item_type, field_details_list, item_path)
                    completed_results.append(None)
                    continue
                if is_awaitable(completed):
                    completed_results.append(self._await_completed(completed, item_type, field_details_list,
                                                                   item_path))
                    awaitable_indices.append(index)
                else:
                    completed_results.append(completed)
        except Exception:
            if awaitable_indices:
                self.settle_in_background([completed_results[index] for index in awaitable_indices])
            raise
        if not awaitable_indices:
            return completed_results

        async def get_completed_results() -> list[Any]:
            if len(awaitable_indices) == 1:
                index = awaitable_indices[0]
                completed_results[index] = await completed_results[index]
            else:
                awaited = await gather_with_cancel(*(completed_results[index] for index in awaitable_indices))
                for index, value in zip(awaitable_indices, awaited, strict=True):
                    completed_results[index] = value
            return completed_results

        return self._await_completed(get_completed_results(), plan.return_type, field_details_list, field_path)

    async def _await_completed(self, completed: Awaitable[Any], return_type: GraphQLOutputType,
                               field_details_list: FieldDetailsList, path: Path) -> Any:
        try:
            return await completed
        except Exception as error:
            self.handle_field_error(error, return_type, field_details_list, path)
            return None
